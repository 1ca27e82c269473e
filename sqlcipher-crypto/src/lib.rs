//! SQLCipher's crypto provider, over RustCrypto.
//!
//! SQLCipher picks its provider when it is compiled. The workspace builds it
//! as if for CommonCrypto (`.cargo/config.toml`: `LIBSQLITE3_FLAGS` and the C
//! include path), and `include/` stands in for Apple's headers: each call
//! SQLCipher makes lands in one of the four functions below, handed over once
//! by [`install`]. The primitives are the RustCrypto crates libsignal already
//! links (`aes` + `cbc`, `hmac` + `sha1`/`sha2`, `pbkdf2`) and the OS random
//! source (`getrandom`), so the library carries no OpenSSL: the file format
//! is SQLCipher 4's own (AES-256-CBC pages, HMAC-SHA512, PBKDF2-HMAC-SHA512),
//! which `core/tests/sqlcipher_format.rs` proves on databases written by the
//! OpenSSL provider.
//!
//! Every function here is called by C with raw pointers, so this is the one
//! crate of the core's graph that needs `unsafe`; each block says what makes
//! it sound. None can panic: lengths are checked and errors are returned as
//! non-zero, which SQLCipher turns into a failed page (never plaintext).

#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_int, c_void};
use std::sync::Once;

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};

/// The hand-over table; its layout is `alcove_sqlcipher_crypto_fns` in
/// `include/CommonCrypto/CommonCrypto.h`.
#[repr(C)]
pub struct Fns {
    hmac: unsafe extern "C" fn(
        c_int,
        *const c_void,
        usize,
        *const c_void,
        usize,
        *const c_void,
        usize,
        *mut c_void,
        usize,
    ) -> c_int,
    pbkdf2: unsafe extern "C" fn(
        c_int,
        *const c_void,
        usize,
        *const c_void,
        usize,
        u32,
        *mut c_void,
        usize,
    ) -> c_int,
    aes256_cbc: unsafe extern "C" fn(
        c_int,
        *const c_void,
        usize,
        *const c_void,
        *const c_void,
        usize,
        *mut c_void,
    ) -> c_int,
    random: unsafe extern "C" fn(*mut c_void, usize) -> c_int,
}

static FNS: Fns = Fns {
    hmac,
    pbkdf2,
    aes256_cbc,
    random,
};

// Defined in the header SQLCipher's amalgamation includes (the crate's
// `libsqlite3-sys` dependency compiles and links it).
unsafe extern "C" {
    fn alcove_sqlcipher_crypto_install(fns: *const Fns);
}

// Keeps the dependency linked after this crate, where the symbol above is.
use libsqlite3_sys as _;

/// Hands the primitives to SQLCipher. Must run before the first encrypted
/// database opens; cheap and idempotent after the first call.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: FNS is a 'static table of functions with the signatures
        // the header declares; the C side only stores the pointer.
        unsafe { alcove_sqlcipher_crypto_install(&FNS) }
    });
}

const OK: c_int = 0;
const FAILED: c_int = 1;

const SHA1: c_int = 1;
const SHA256: c_int = 2;
const SHA512: c_int = 3;

/// A byte slice from C, where a null pointer is allowed only with length 0.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes for `'a`, or null with 0.
unsafe fn bytes<'a>(ptr: *const c_void, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return (len == 0).then_some(&[]);
    }
    // SAFETY: non-null and valid for `len` bytes, per the caller.
    Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// # Safety
/// `ptr` must be valid for writes of `len` bytes for `'a` and not aliased.
unsafe fn bytes_mut<'a>(ptr: *mut c_void, len: usize) -> Option<&'a mut [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, valid for `len` bytes and unaliased, per the caller.
    Some(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) })
}

fn mac<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    in1: &[u8],
    in2: &[u8],
    out: &mut [u8],
) -> c_int {
    let Ok(mut m) = <M as Mac>::new_from_slice(key) else {
        return FAILED;
    };
    m.update(in1);
    m.update(in2);
    let tag = m.finalize().into_bytes();
    if tag.len() != out.len() {
        return FAILED;
    }
    out.copy_from_slice(&tag);
    OK
}

/// HMAC over `in1 || in2` (SQLCipher MACs a page, then its number).
///
/// # Safety
/// Pointers valid for their lengths; `out` does not overlap the inputs.
unsafe extern "C" fn hmac(
    algorithm: c_int,
    key: *const c_void,
    key_len: usize,
    in1: *const c_void,
    in1_len: usize,
    in2: *const c_void,
    in2_len: usize,
    out: *mut c_void,
    out_len: usize,
) -> c_int {
    // SAFETY: the C side passes buffers of the lengths it names.
    let (key, in1, in2, out) = unsafe {
        (
            bytes(key, key_len),
            bytes(in1, in1_len),
            bytes(in2, in2_len),
            bytes_mut(out, out_len),
        )
    };
    let (Some(key), Some(in1), Some(in2), Some(out)) = (key, in1, in2, out) else {
        return FAILED;
    };
    match algorithm {
        SHA1 => mac::<Hmac<sha1::Sha1>>(key, in1, in2, out),
        SHA256 => mac::<Hmac<sha2::Sha256>>(key, in1, in2, out),
        SHA512 => mac::<Hmac<sha2::Sha512>>(key, in1, in2, out),
        _ => FAILED,
    }
}

/// PBKDF2 with HMAC-SHA1/256/512 (SQLCipher: the page key from a
/// passphrase, and the MAC key from the page key with two rounds).
///
/// # Safety
/// Pointers valid for their lengths; `out` does not overlap the inputs.
unsafe extern "C" fn pbkdf2(
    algorithm: c_int,
    pass: *const c_void,
    pass_len: usize,
    salt: *const c_void,
    salt_len: usize,
    rounds: u32,
    out: *mut c_void,
    out_len: usize,
) -> c_int {
    // SAFETY: the C side passes buffers of the lengths it names.
    let (pass, salt, out) = unsafe {
        (
            bytes(pass, pass_len),
            bytes(salt, salt_len),
            bytes_mut(out, out_len),
        )
    };
    let (Some(pass), Some(salt), Some(out)) = (pass, salt, out) else {
        return FAILED;
    };
    if rounds == 0 {
        return FAILED;
    }
    let done = match algorithm {
        SHA1 => pbkdf2::pbkdf2::<Hmac<sha1::Sha1>>(pass, salt, rounds, out),
        SHA256 => pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(pass, salt, rounds, out),
        SHA512 => pbkdf2::pbkdf2::<Hmac<sha2::Sha512>>(pass, salt, rounds, out),
        _ => return FAILED,
    };
    if done.is_ok() {
        OK
    } else {
        FAILED
    }
}

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

/// AES-256-CBC, no padding, over whole blocks. `out` may be `in` itself.
///
/// # Safety
/// `key` 32 bytes, `iv` 16 bytes, `input` and `out` valid for `len` bytes;
/// `out` either is `input` or does not overlap it.
unsafe extern "C" fn aes256_cbc(
    encrypt: c_int,
    key: *const c_void,
    key_len: usize,
    iv: *const c_void,
    input: *const c_void,
    len: usize,
    out: *mut c_void,
) -> c_int {
    if !len.is_multiple_of(16) || input.is_null() || out.is_null() {
        return FAILED;
    }
    // SAFETY: key and IV of the lengths SQLCipher's provider fixes.
    let (Some(key), Some(iv)) = (unsafe { bytes(key, key_len) }, unsafe { bytes(iv, 16) }) else {
        return FAILED;
    };
    let done = if std::ptr::eq(input, out) {
        // SAFETY: in place: one mutable view of the caller's buffer.
        let Some(buf) = (unsafe { bytes_mut(out, len) }) else {
            return FAILED;
        };
        if encrypt != 0 {
            Enc::new_from_slices(key, iv)
                .map(|c| c.encrypt_padded_mut::<NoPadding>(buf, len).is_ok())
        } else {
            Dec::new_from_slices(key, iv).map(|c| c.decrypt_padded_mut::<NoPadding>(buf).is_ok())
        }
    } else {
        let (start, end) = (input as usize, out as usize);
        if start < end + len && end < start + len {
            return FAILED; // partly overlapping: never done by SQLCipher
        }
        // SAFETY: two distinct, non-overlapping buffers of `len` bytes.
        let (Some(src), Some(dst)) = (unsafe { bytes(input, len) }, unsafe { bytes_mut(out, len) })
        else {
            return FAILED;
        };
        if encrypt != 0 {
            Enc::new_from_slices(key, iv)
                .map(|c| c.encrypt_padded_b2b_mut::<NoPadding>(src, dst).is_ok())
        } else {
            Dec::new_from_slices(key, iv)
                .map(|c| c.decrypt_padded_b2b_mut::<NoPadding>(src, dst).is_ok())
        }
    };
    if matches!(done, Ok(true)) {
        OK
    } else {
        FAILED
    }
}

/// Page IVs and salts, from the OS random source.
///
/// # Safety
/// `out` valid for writes of `len` bytes.
unsafe extern "C" fn random(out: *mut c_void, len: usize) -> c_int {
    // SAFETY: the C side passes a buffer of the length it names.
    let Some(out) = (unsafe { bytes_mut(out, len) }) else {
        return FAILED;
    };
    if getrandom::fill(out).is_ok() {
        OK
    } else {
        FAILED
    }
}

#[cfg(test)]
mod tests {
    //! What C could hand these functions wrongly: each is refused with a
    //! non-zero result, never a panic (a panic cannot unwind into C).
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const IV: [u8; 16] = [9; 16];

    fn cbc(encrypt: c_int, input: &[u8], out: &mut [u8]) -> c_int {
        // SAFETY: buffers of the lengths passed.
        unsafe {
            aes256_cbc(
                encrypt,
                KEY.as_ptr().cast(),
                KEY.len(),
                IV.as_ptr().cast(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
            )
        }
    }

    #[test]
    fn cbc_round_trips_in_place_and_between_buffers() {
        let plain = [42u8; 64];
        let mut sealed = [0u8; 64];
        assert_eq!(cbc(1, &plain, &mut sealed), OK);
        assert_ne!(sealed, plain);
        let mut in_place = sealed;
        let p = in_place.as_mut_ptr();
        // SAFETY: one buffer of 64 bytes, read and written in place.
        let r = unsafe {
            aes256_cbc(
                0,
                KEY.as_ptr().cast(),
                32,
                IV.as_ptr().cast(),
                p.cast(),
                64,
                p.cast(),
            )
        };
        assert_eq!(r, OK);
        assert_eq!(in_place, plain);
    }

    #[test]
    fn malformed_cipher_calls_are_refused() {
        let mut out = [0u8; 64];
        // Not a whole number of blocks.
        assert_eq!(cbc(1, &[0u8; 15], &mut out), FAILED);
        // A short key.
        // SAFETY: buffers at least as long as the lengths passed.
        let short = unsafe {
            aes256_cbc(
                1,
                KEY.as_ptr().cast(),
                16,
                IV.as_ptr().cast(),
                out.as_ptr().cast(),
                16,
                out.as_mut_ptr().cast(),
            )
        };
        assert_eq!(short, FAILED);
        // Null buffers.
        // SAFETY: null pointers are checked before any read.
        let null = unsafe {
            aes256_cbc(
                1,
                KEY.as_ptr().cast(),
                32,
                IV.as_ptr().cast(),
                std::ptr::null(),
                16,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(null, FAILED);
        // Input and output overlapping but not the same buffer.
        let mut buf = [0u8; 48];
        let p = buf.as_mut_ptr();
        // SAFETY: both ranges lie inside `buf`; the overlap is refused
        // before any slice is made.
        let overlap = unsafe {
            aes256_cbc(
                1,
                KEY.as_ptr().cast(),
                32,
                IV.as_ptr().cast(),
                p.cast(),
                32,
                p.add(16).cast(),
            )
        };
        assert_eq!(overlap, FAILED);
    }

    #[test]
    fn malformed_mac_and_kdf_calls_are_refused() {
        let mut out = [0u8; 64];
        let data = [1u8; 10];
        // SAFETY: every pointer is valid for the length passed, or null with 0.
        unsafe {
            // An unknown algorithm.
            assert_eq!(
                hmac(
                    9,
                    KEY.as_ptr().cast(),
                    32,
                    data.as_ptr().cast(),
                    10,
                    std::ptr::null(),
                    0,
                    out.as_mut_ptr().cast(),
                    64
                ),
                FAILED
            );
            // An output of the wrong size for SHA-512.
            assert_eq!(
                hmac(
                    SHA512,
                    KEY.as_ptr().cast(),
                    32,
                    data.as_ptr().cast(),
                    10,
                    std::ptr::null(),
                    0,
                    out.as_mut_ptr().cast(),
                    32
                ),
                FAILED
            );
            // A null input with a length.
            assert_eq!(
                hmac(
                    SHA512,
                    KEY.as_ptr().cast(),
                    32,
                    std::ptr::null(),
                    10,
                    std::ptr::null(),
                    0,
                    out.as_mut_ptr().cast(),
                    64
                ),
                FAILED
            );
            assert_eq!(
                hmac(
                    SHA512,
                    KEY.as_ptr().cast(),
                    32,
                    data.as_ptr().cast(),
                    10,
                    std::ptr::null(),
                    0,
                    out.as_mut_ptr().cast(),
                    64
                ),
                OK
            );
            // Zero rounds and an unknown PRF.
            assert_eq!(
                pbkdf2(
                    SHA512,
                    data.as_ptr().cast(),
                    10,
                    data.as_ptr().cast(),
                    10,
                    0,
                    out.as_mut_ptr().cast(),
                    32
                ),
                FAILED
            );
            assert_eq!(
                pbkdf2(
                    9,
                    data.as_ptr().cast(),
                    10,
                    data.as_ptr().cast(),
                    10,
                    2,
                    out.as_mut_ptr().cast(),
                    32
                ),
                FAILED
            );
            assert_eq!(random(std::ptr::null_mut(), 16), FAILED);
            assert_eq!(random(out.as_mut_ptr().cast(), 16), OK);
        }
    }
}
