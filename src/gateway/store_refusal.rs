//! An answer refused because the session store failed: counted once in
//! `gatehouse_store_errors_total{op}` (and logins in
//! `gatehouse_logins_total{result="store_unavailable"}`), and covered by
//! the store's outage lines instead of a line of its own, so an outage is
//! a few lines however busy the gateway is. A session whose user the app's
//! database could not give is the database's refusal, on its outage lines.

use std::fmt;

use super::state::Shared;
use crate::auth::Unavailable;
use crate::metrics::{Login, StoreOp, METRICS};
use crate::outage::Refused;
use crate::session::store::StoreError;

/// A session that could not be checked: the store, or the app's users
/// database holding the session's user, did not answer. Each is counted
/// and reported against the backend that failed.
#[derive(Debug, Clone)]
pub enum Unanswered {
    Store(StoreError),
    Users(Unavailable),
}

impl From<StoreError> for Unanswered {
    fn from(e: StoreError) -> Self {
        Unanswered::Store(e)
    }
}

impl From<&StoreError> for Unanswered {
    fn from(e: &StoreError) -> Self {
        Unanswered::Store(e.clone())
    }
}

impl From<&Unanswered> for Unanswered {
    fn from(e: &Unanswered) -> Self {
        e.clone()
    }
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unanswered::Store(e) => e.fmt(f),
            Unanswered::Users(e) => e.fmt(f),
        }
    }
}

/// Counts a refusal against whichever backend did not answer.
pub fn count_unanswered(shared: &Shared, op: StoreOp, e: &Unanswered) {
    match e {
        Unanswered::Store(e) => count(shared, op, e),
        Unanswered::Users(e) => {
            let what = refused_as(op);
            if let Some(sql) = &shared.sql_users {
                sql.outage().refused(what, e);
            }
        }
    }
}

fn refused_as(op: StoreOp) -> Refused {
    if op == StoreOp::Login {
        METRICS.login(Login::StoreUnavailable);
        Refused::Login
    } else {
        Refused::Request
    }
}

/// Counts a refusal because the session store failed.
pub fn count(shared: &Shared, op: StoreOp, e: &StoreError) {
    METRICS.store_error(op);
    let what = refused_as(op);
    match shared.store.outage() {
        Some(o) => o.refused(what, e),
        // An in-process store fails only on a bug: each time is worth a line.
        None => tracing::error!("session store failed: {e}"),
    }
}
