//! `uniffi-bindgen generate --library <libalcove_ffi.so> --language kotlin|swift --out-dir DIR`
#![forbid(unsafe_code)]

fn main() {
    uniffi::uniffi_bindgen_main()
}
