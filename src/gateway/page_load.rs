//! Is this request a browser loading a page (answer with HTML, redirect to
//! the login page) or a script (answer with JSON and a status)? Pure.

use http::header::{HeaderName, ACCEPT};
use http::request::Parts;

/// Built once, not parsed on every request.
static X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

pub fn is_page_load(req: &Parts) -> bool {
    let safe_method = req.method == http::Method::GET || req.method == http::Method::HEAD;
    let header = |name: &HeaderName| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let xhr = header(&X_REQUESTED_WITH).eq_ignore_ascii_case("xmlhttprequest");
    let accept = header(&ACCEPT);
    safe_method && !xhr && accept.contains("text/html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn browsers_loading_pages_are_page_loads() {
        let html = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        assert!(is_page_load(&req("GET", &[html])));
        assert!(is_page_load(&req("HEAD", &[html])));
    }

    #[test]
    fn scripts_and_writes_are_not() {
        let html = ("accept", "text/html");
        assert!(!is_page_load(&req("POST", &[html])));
        assert!(!is_page_load(&req(
            "GET",
            &[html, ("X-Requested-With", "XMLHttpRequest")]
        )));
        assert!(!is_page_load(&req(
            "GET",
            &[("accept", "application/json")]
        )));
        assert!(!is_page_load(&req("GET", &[])));
    }
}
