//! Link options for the library the phones ship.
//!
//! Only the size-oriented build (`ffi-release`, opt-level "s"/"z") packs
//! its relative relocations: in a position-independent library every
//! pointer in a vtable or static table is one 24-byte `R_*_RELATIVE` entry
//! (about 1 MiB of the library). Packed, they take a few KiB. Loader
//! support is needed: glibc 2.36+ for DT_RELR, and Android's packed format
//! (APS2, API 23+; the app's minSdk is 26). Debug and release builds keep
//! plain relocations so the JVM tests load the library on older hosts.
//! Apple's linker already writes compact chained fixups.
//!
//! `ALCOVE_PACK_RELOCS=android|relr|none` overrides the choice (the size
//! script links an aarch64 Linux build the way the NDK links Android's).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ALCOVE_PACK_RELOCS");
    let opt = std::env::var("OPT_LEVEL").unwrap_or_default();
    if opt != "s" && opt != "z" {
        return;
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let default = match (os.as_str(), env.as_str()) {
        ("android", _) => "android",
        ("linux", "gnu") => "relr",
        _ => "none",
    };
    let packing = std::env::var("ALCOVE_PACK_RELOCS").unwrap_or_else(|_| default.to_owned());
    match packing.as_str() {
        "android" => println!("cargo:rustc-cdylib-link-arg=-Wl,--pack-dyn-relocs=android"),
        "relr" => println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs"),
        _ => {}
    }
}
