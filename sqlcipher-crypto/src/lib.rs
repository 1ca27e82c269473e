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
    use std::ptr::{null, null_mut};

    const KEY: [u8; 32] = [7; 32];
    const IV: [u8; 16] = [9; 16];

    /// `aes256_cbc` with the test key (its first `key_len` bytes) and IV.
    ///
    /// # Safety
    /// `input` and `out` valid for `len` bytes, or null.
    unsafe fn cbc_raw(
        encrypt: c_int,
        key_len: usize,
        input: *const u8,
        len: usize,
        out: *mut u8,
    ) -> c_int {
        // SAFETY: the key and IV are constants at least as long as passed;
        // the buffers are the caller's promise.
        unsafe {
            aes256_cbc(
                encrypt,
                KEY.as_ptr().cast(),
                key_len,
                IV.as_ptr().cast(),
                input.cast(),
                len,
                out.cast(),
            )
        }
    }

    fn cbc(encrypt: c_int, input: &[u8], out: &mut [u8]) -> c_int {
        // SAFETY: buffers of the lengths passed.
        unsafe {
            cbc_raw(
                encrypt,
                KEY.len(),
                input.as_ptr(),
                input.len(),
                out.as_mut_ptr(),
            )
        }
    }

    /// `hmac` keyed with the test key over `len` bytes at `input`, into
    /// `out_len` bytes of `out`.
    ///
    /// # Safety
    /// `input` valid for `len` bytes (or null), `out` for `out_len`.
    unsafe fn mac(
        alg: c_int,
        input: *const u8,
        len: usize,
        out: &mut [u8],
        out_len: usize,
    ) -> c_int {
        assert!(out_len <= out.len());
        // SAFETY: as the caller promises; the second input is empty.
        unsafe {
            hmac(
                alg,
                KEY.as_ptr().cast(),
                KEY.len(),
                input.cast(),
                len,
                null(),
                0,
                out.as_mut_ptr().cast(),
                out_len,
            )
        }
    }

    /// `pbkdf2` of `data` salted with itself.
    fn kdf(prf: c_int, data: &[u8], rounds: u32, out: &mut [u8]) -> c_int {
        // SAFETY: every buffer valid for the length passed.
        unsafe {
            pbkdf2(
                prf,
                data.as_ptr().cast(),
                data.len(),
                data.as_ptr().cast(),
                data.len(),
                rounds,
                out.as_mut_ptr().cast(),
                out.len(),
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
        assert_eq!(unsafe { cbc_raw(0, 32, p, 64, p) }, OK);
        assert_eq!(in_place, plain);
    }

    #[test]
    fn malformed_cipher_calls_are_refused() {
        let mut out = [0u8; 64];
        // Not a whole number of blocks.
        assert_eq!(cbc(1, &[0u8; 15], &mut out), FAILED);
        // SAFETY: buffers at least as long as the lengths passed; null
        // pointers are checked before any read; both overlapping ranges
        // lie inside `buf`, and the overlap is refused before any slice
        // is made.
        unsafe {
            // A short key.
            let o = out.as_mut_ptr();
            assert_eq!(cbc_raw(1, 16, o, 16, o), FAILED);
            // Null buffers.
            assert_eq!(cbc_raw(1, 32, null(), 16, null_mut()), FAILED);
            // Input and output overlapping but not the same buffer.
            let mut buf = [0u8; 48];
            let p = buf.as_mut_ptr();
            assert_eq!(cbc_raw(1, 32, p, 32, p.add(16)), FAILED);
        }
    }

    #[test]
    fn malformed_mac_and_kdf_calls_are_refused() {
        let mut out = [0u8; 64];
        let data = [1u8; 10];
        let d = data.as_ptr();
        // SAFETY: every pointer is valid for the length passed, or null.
        unsafe {
            // An unknown algorithm.
            assert_eq!(mac(9, d, 10, &mut out, 64), FAILED);
            // An output of the wrong size for SHA-512.
            assert_eq!(mac(SHA512, d, 10, &mut out, 32), FAILED);
            // A null input with a length.
            assert_eq!(mac(SHA512, null(), 10, &mut out, 64), FAILED);
            assert_eq!(mac(SHA512, d, 10, &mut out, 64), OK);
            assert_eq!(random(null_mut(), 16), FAILED);
            assert_eq!(random(out.as_mut_ptr().cast(), 16), OK);
        }
        // Zero rounds and an unknown PRF.
        assert_eq!(kdf(SHA512, &data, 0, &mut out[..32]), FAILED);
        assert_eq!(kdf(9, &data, 2, &mut out[..32]), FAILED);
    }
}
