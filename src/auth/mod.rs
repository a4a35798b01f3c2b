//! Users and passwords. No Pingora types here.

pub mod file;
pub mod hash;
pub mod password;
pub mod source;
pub mod sql;
pub mod user;
pub mod verifier;

pub use file::UserDb;
pub use source::{Unavailable, UserSource, Users};
pub use user::{Groups, User};
pub use verifier::PasswordVerifier;
