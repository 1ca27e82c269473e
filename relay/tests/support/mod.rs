//! Helpers shared by the relay's API test suites.
#![allow(dead_code)]

use base64::Engine;
use rand::RngCore;

/// The `Authorization` header a device sends: HTTP Basic with
/// `<account>.<device>` and the hex secret (see API.md).
pub fn basic_auth(account: &str, device: u32, secret: &[u8]) -> String {
    let s = format!("{account}.{device}:{}", hex::encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

/// `n` random bytes.
pub fn rnd(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b
}

pub mod http;
