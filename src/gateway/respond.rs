//! The one response helper for everything the gateway answers itself:
//! status, headers, Content-Length, body, and the security headers every own
//! response carries.

use std::borrow::Cow;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
];

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Names are mostly fixed; identity headers come from the config.
    pub headers: Vec<(Cow<'static, str>, String)>,
    pub body: Bytes,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self::new(status, "text/html; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    /// A status and headers, no body (`Content-Length: 0`): nginx reuses
    /// its connection to the gateway after an `auth_request` answer only
    /// when there is no body to skip.
    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// JavaScript built per request (the session script).
    pub fn script(body: String) -> Self {
        Self::new(200, "text/javascript; charset=utf-8", body)
    }

    pub fn asset(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self::new(200, content_type, body.into()).header("Cache-Control", "public, max-age=3600")
    }

    /// 303 See Other: after a POST the browser follows with a GET.
    pub fn see_other(location: String) -> Self {
        Self::new(303, "text/plain; charset=utf-8", "").header("Location", location)
    }

    /// Adds a header; later ones with the same name are kept too
    /// (several `Set-Cookie`s).
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn to_header(&self) -> pingora::Result<ResponseHeader> {
        let mut h = ResponseHeader::build(self.status, Some(self.headers.len() + 8))?;
        for (name, value) in SECURITY_HEADERS {
            if !self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                h.insert_header(name, value)?;
            }
        }
        for (name, value) in &self.headers {
            match name {
                Cow::Borrowed(n) => h.append_header(*n, value.as_str())?,
                Cow::Owned(n) => h.append_header(n.clone(), value.as_str())?,
            };
        }
        h.insert_header("Content-Length", self.body.len().to_string())?;
        Ok(h)
    }

    pub async fn send(self, session: &mut Session) -> pingora::Result<()> {
        let header = self.to_header()?;
        let head_only = session.req_header().method == http::Method::HEAD || self.body.is_empty();
        session
            .write_response_header(Box::new(header), head_only)
            .await?;
        if !head_only {
            session.write_response_body(Some(self.body), true).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_responses_carry_length_and_security_headers() {
        let r = Reply::html(200, "<p>hi</p>".into())
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2");
        let h = r.to_header().unwrap();
        assert_eq!(h.status.as_u16(), 200);
        assert_eq!(h.headers.get("content-length").unwrap(), "9");
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 2);
        assert!(h
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert_eq!(h.headers.get("cache-control").unwrap(), "no-store");
        assert_eq!(h.headers.get("x-content-type-options").unwrap(), "nosniff");
    }

    #[test]
    fn assets_may_be_cached() {
        let h = Reply::asset("text/css", "a{}").to_header().unwrap();
        assert_eq!(h.headers.get_all("cache-control").iter().count(), 1);
        assert_eq!(
            h.headers.get("cache-control").unwrap(),
            "public, max-age=3600"
        );
    }

    #[test]
    fn see_other_points_somewhere() {
        let h = Reply::see_other("/x".into()).to_header().unwrap();
        assert_eq!(h.status.as_u16(), 303);
        assert_eq!(h.headers.get("location").unwrap(), "/x");
    }
}
