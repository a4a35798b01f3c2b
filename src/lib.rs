//! gatehouse: a login gateway that sits in front of unmodified web apps, owns
//! the session cookie and enforces session policy at the edge.
//!
//! The library holds all the logic; `main.rs` only parses arguments. Pure
//! logic (policy, parsing, validation; `wire/` for what arrives on the wire)
//! lives apart from the Pingora glue in `gateway/` so it can be tested
//! without sockets.

pub mod admin;
pub mod atomic_file;
pub mod auth;
pub mod background;
pub mod bounded;
pub mod clock;
pub mod config;
pub mod demo;
pub mod gateway;
pub mod hex;
pub mod listeners;
pub mod logging;
pub mod metrics;
pub mod outage;
pub mod server;
pub mod session;
pub mod tls;
pub mod ui;
pub mod wire;
