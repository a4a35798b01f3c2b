//! An answer refused because the session store failed: counted once in
//! `gatehouse_store_errors_total{op}` (and logins in
//! `gatehouse_logins_total{result="store_unavailable"}`), and covered by
//! the store's outage lines instead of a line of its own, so an outage is
//! a few lines however busy the gateway is.

use super::state::Shared;
use crate::metrics::{Login, StoreOp, METRICS};
use crate::outage::Refused;
use crate::session::store::StoreError;

pub fn count(shared: &Shared, op: StoreOp, e: &StoreError) {
    METRICS.store_error(op);
    let what = if op == StoreOp::Login {
        METRICS.login(Login::StoreUnavailable);
        Refused::Login
    } else {
        Refused::Request
    };
    // The backend that failed has just said so: a session's user read
    // from the app's database (first request of a session this process
    // never saw) fails like the store does.
    let users_db = shared
        .sql_users
        .as_ref()
        .map(|sql| sql.outage())
        .filter(|o| o.is_down());
    let store = shared.store.outage();
    match (store, users_db) {
        (Some(o), _) if o.is_down() => o.refused(what, e),
        (_, Some(o)) => o.refused(what, e),
        (Some(o), None) => o.refused(what, e),
        // An in-process store fails only on a bug: each time is worth a line.
        (None, None) => tracing::error!("session store failed: {e}"),
    }
}
