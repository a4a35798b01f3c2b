//! fail_to_proxy: when the app is down (502), too slow (504) or the request
//! fails, a clear page (or JSON for scripts) instead of Pingora's bare error.

use pingora::proxy::{FailToProxy, Session};
use pingora::{Error, ErrorSource, ErrorType};

use super::pages::problem;
use super::RequestCtx;

/// The status an error maps to, decided here and nowhere else; 0 means the
/// client is gone and nothing can be sent.
pub fn status_for(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match e.esource() {
            // `read_timeout`: connected, but the app did not answer in time.
            ErrorSource::Upstream
                if matches!(
                    e.etype(),
                    ErrorType::ReadTimedout | ErrorType::WriteTimedout
                ) =>
            {
                504
            }
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

pub async fn answer(session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
    let code = status_for(e);
    if code > 0 && session.response_written().is_none() {
        // The connection is not reused after a failure: say so, so clients
        // do not send the next request down a closing connection.
        session.set_keepalive(None);
        let snap = &ctx.snapshot;
        let reply = match code {
            502 => problem(
                snap,
                ctx.page_load,
                502,
                "upstream_unavailable",
                "The application is not responding",
                "The sign-in gateway is working, but the application behind it did not answer. Please try again in a moment.",
            ),
            504 => problem(
                snap,
                ctx.page_load,
                504,
                "upstream_timeout",
                "The application is taking too long",
                "The sign-in gateway is working, but the application behind it did not answer in time. Please try again in a moment.",
            ),
            400 => problem(snap, ctx.page_load, 400, "bad_request", "Bad request", "The request could not be understood."),
            _ => problem(snap, ctx.page_load, code, "error", "Something went wrong", "The request could not be completed."),
        };
        if let Err(send_err) = reply.send(session).await {
            tracing::debug!("could not send the error page: {send_err}");
        }
    }
    ctx.status = code;
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_upstream_is_504_and_an_unreachable_or_rude_one_502() {
        assert_eq!(status_for(&Error::new_up(ErrorType::ReadTimedout)), 504);
        assert_eq!(status_for(&Error::new_up(ErrorType::WriteTimedout)), 504);
        assert_eq!(status_for(&Error::new_up(ErrorType::ConnectTimedout)), 502);
        assert_eq!(status_for(&Error::new_up(ErrorType::ConnectRefused)), 502);
        assert_eq!(status_for(&Error::new_up(ErrorType::ConnectionClosed)), 502);
        assert_eq!(
            status_for(&Error::new_up(ErrorType::TLSHandshakeFailure)),
            502
        );
    }
}
