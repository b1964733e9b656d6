//! Access tokens (HS256 JWT, checked against the injected clock) and opaque refresh tokens
//! (random, stored only as a SHA-256 hash).

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::role::Role;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// The user's `token_generation` when issued; the extractor refuses older generations.
    /// Tokens issued before generations existed read as 0, the generation every user starts at.
    #[serde(default)]
    pub gen: i64,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

const ISSUER: &str = "huying";

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    secret: Vec<u8>,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            secret: secret.to_vec(),
        }
    }

    /// Key material for other HMACs (one-time codes), derived so the JWT key is not reused as is.
    pub fn derive(&self, purpose: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(purpose.as_bytes());
        h.update(b":");
        h.update(&self.secret);
        h.finalize().to_vec()
    }

    /// A token of generation 0: a user who never signed out nor changed password.
    pub fn issue(
        &self,
        user_id: i64,
        role: Role,
        now: DateTime<Utc>,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        self.issue_generation(user_id, role, 0, now, ttl_secs)
    }

    pub fn issue_generation(
        &self,
        user_id: i64,
        role: Role,
        generation: i64,
        now: DateTime<Utc>,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            gen: generation,
            iat: now.timestamp(),
            exp: now.timestamp() + ttl_secs,
            iss: ISSUER.into(),
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Only HS256 is accepted (so `alg: none` and algorithm swaps fail); expiry is checked
    /// against `now` from the injected clock.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[ISSUER]);
        let data = decode::<Claims>(token, &self.decoding, &validation).ok()?;
        if data.claims.exp <= now.timestamp() {
            return None;
        }
        Some(data.claims)
    }
}

/// A new opaque token: 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn tokens_verify_until_they_expire() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let t = keys.issue(7, Role::Admin, now, 900).expect("issue");
        let c = keys.verify(&t, now).expect("valid");
        assert_eq!(c.sub, "7");
        assert_eq!(c.role, Role::Admin);
        assert!(keys.verify(&t, now + Duration::seconds(901)).is_none());
    }

    #[test]
    fn tampered_and_foreign_tokens_fail() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let other = JwtKeys::new(b"another secret another secret !!");
        let now = Utc::now();
        let t = other.issue(1, Role::Admin, now, 900).expect("issue");
        assert!(keys.verify(&t, now).is_none());
        let good = keys.issue(1, Role::Resident, now, 900).expect("issue");
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"sub":"1","role":"admin","gen":0,"iat":0,"exp":9999999999,"iss":"huying"}"#,
        );
        parts[1] = &forged;
        assert!(keys.verify(&parts.join("."), now).is_none());
    }

    #[test]
    fn random_tokens_differ_and_hash_stably() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(sha256_hex(&a), sha256_hex(&a));
        assert_eq!(sha256_hex(&a).len(), 64);
    }
}
