//! Sessions: identifiers, records, the validity policy (pure, clock
//! injected) and the stores that keep them.

pub mod id;
pub mod policy;
pub mod record;
pub mod schedule;
pub mod store;

pub use id::{SessionId, SessionKey};
pub use policy::{EndReason, Liveness, SessionPolicy, UserLimits, Verdict, Watermarks};
pub use record::SessionRecord;
