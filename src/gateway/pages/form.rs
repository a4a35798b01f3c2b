//! Reading the small urlencoded forms the gateway's pages post, with a cap
//! and a deadline: a body over the cap is answered 413 without being read
//! to the end, one not all there within `server.form_body_timeout` 408.

use bytes::BytesMut;
use pingora::proxy::Session;
use std::collections::HashMap;

use super::{too_large, too_slow, Reply, View};
use crate::metrics::{CutOff, METRICS};

/// The most the gateway reads of a form body.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// A posted form; a missing field reads as empty.
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// The form, or the answer to give when its body is too large.
pub async fn read_form(
    view: &View<'_>,
    session: &mut Session,
) -> pingora::Result<Result<Form, Reply>> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
        session.set_keepalive(None);
        return Ok(Err(too_large(view)));
    }
    let deadline = view.snap.settings.server.client_limits.form_body_timeout;
    let body = match tokio::time::timeout(deadline, read_capped(session)).await {
        Ok(read) => read?,
        Err(_elapsed) => {
            METRICS.cut_off(CutOff::FormTimeout);
            session.set_keepalive(None);
            return Ok(Err(too_slow(view)));
        }
    };
    let Some(body) = body else {
        session.set_keepalive(None);
        return Ok(Err(too_large(view)));
    };
    let mut fields = HashMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        // First value wins: a repeated field cannot override the real one.
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    Ok(Ok(Form(fields)))
}

/// The whole body, or `None` past `MAX_FORM_BYTES`.
async fn read_capped(session: &mut Session) -> pingora::Result<Option<BytesMut>> {
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
