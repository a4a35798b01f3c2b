//! Users and passwords. No Pingora types here.

pub mod file;
pub mod hash;
pub mod password;
pub mod sql;
pub mod verifier;

pub use file::{Groups, User, UserDb};
pub use verifier::PasswordVerifier;
