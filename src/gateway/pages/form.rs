//! Reading the small urlencoded forms the gateway's pages post, with a cap:
//! a body over the cap is answered 413 without being read to the end.

use bytes::BytesMut;
use pingora::proxy::Session;
use std::collections::HashMap;

/// The most the gateway reads of a form body.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

pub enum FormBody {
    Fields(HashMap<String, String>),
    TooLarge,
}

pub async fn read_form(session: &mut Session) -> pingora::Result<FormBody> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
        session.set_keepalive(None);
        return Ok(FormBody::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            session.set_keepalive(None);
            return Ok(FormBody::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let mut fields = HashMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        // First value wins: a repeated field cannot override the real one.
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    Ok(FormBody::Fields(fields))
}
