//! Sign-in: passwords, one-time SMS codes, access and refresh tokens, the current user.

pub mod extractor;
pub mod otp;
pub mod password;
pub mod tokens;

pub use extractor::AuthUser;
