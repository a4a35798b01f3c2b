//! Readers of what arrives on the wire, with no Pingora types: header
//! names, `X-Forwarded-For` chains, `Cookie` headers, the framing of a
//! request's head and WebSocket frame heads. Pure functions over bytes
//! and strings, unit-, property- and fuzz-tested on their own; `gateway/`
//! calls them from its phases.

pub mod cookie;
pub mod forwarded;
pub mod framing;
pub mod identity_headers;
pub mod original_request;
pub mod websocket;
