//! Users and passwords. No Pingora types here.

pub mod hash;
pub mod password;
pub mod sql;
pub mod users;
pub mod users_file;
pub mod verifier;

pub use users::{Groups, User, UserDb};
pub use verifier::PasswordVerifier;
