//! One-time SMS codes: six digits, stored as an HMAC so a database leak does not leak codes.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

pub fn generate() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32))
}

pub fn hash(key: &[u8], phone: &str, code: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(phone.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of a submitted code with the stored hash.
pub fn verify(key: &[u8], phone: &str, code: &str, stored_hex: &str) -> bool {
    let Ok(expected) = hex::decode(stored_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(phone.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_verify_per_phone() {
        for _ in 0..100 {
            let c = generate();
            assert_eq!(c.len(), 6);
            assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        }
        let h = hash(b"k", "13800138000", "123456");
        assert!(verify(b"k", "13800138000", "123456", &h));
        assert!(!verify(b"k", "13800138000", "123457", &h));
        assert!(!verify(b"k", "13900139000", "123456", &h));
        assert!(!verify(b"other", "13800138000", "123456", &h));
    }
}
