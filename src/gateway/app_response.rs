//! The response_filter phase: what the gateway adds to the app's answer.
//! Ends the session when the app accepted a logout on one of its own
//! logout paths, and clears the session cookie when asked to.

use pingora::http::ResponseHeader;

use super::authenticate::end_session;
use super::state::Shared;
use super::RequestCtx;
use crate::session::EndReason;

pub async fn finish(
    shared: &Shared,
    response: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let accepted = response.status.is_success() || response.status.is_redirection();
    let logout = match ctx.logout_on_success.take() {
        Some(key) if accepted => ctx.username().map(|user| (key, user.to_string())),
        _ => None,
    };
    if let Some((key, user)) = logout {
        match end_session(shared, &key, &user, EndReason::Logout).await {
            Ok(()) => ctx.clear_session_cookie = true,
            Err(e) => tracing::error!("the app logged out but the gateway session remains: {e}"),
        }
    }
    if ctx.clear_session_cookie {
        response.append_header("Set-Cookie", ctx.snapshot.settings.session.clear_cookie())?;
    }
    Ok(())
}
