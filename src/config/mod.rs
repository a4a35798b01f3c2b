//! Configuration: the TOML file model (`file`), its validation into
//! `Settings` (`validate`), and errors that point at file, line and key.

mod duration;
mod error;
mod file;
mod settings;
mod tls;
mod ui;
mod upstream;
mod users;
mod validate;

pub use duration::parse_duration;
pub use error::{line_at, ConfigError, ConfigErrors, ErrorSink, KeyPath};
pub use settings::*;
pub use tls::hsts_header;
pub(crate) use validate::deserialize as validate_deserialize;
pub use validate::{load, parse, DEFAULT_MIN_PASSWORD_LENGTH};
