//! Route matching: the first `[[route]]` whose host and path prefix match the
//! normalised request. Pure.

use crate::config::Route;

/// True when `path` is `prefix` or lies under it on a segment boundary, so
/// `/static` covers `/static/x` but not `/staticfiles`.
pub fn under_prefix(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Index and route of the first match.
pub fn find_route<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<(usize, &'a Route)> {
    routes.iter().enumerate().find(|(_, r)| {
        r.host.as_deref().is_none_or(|h| h == host) && under_prefix(&r.path_prefix, path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Access;

    fn route(host: Option<&str>, prefix: &str, access: Access) -> Route {
        Route {
            host: host.map(str::to_string),
            path_prefix: prefix.into(),
            upstreams: vec![],
            access,
            groups: vec![],
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(under_prefix("/", "/anything"));
        assert!(under_prefix("/static/", "/static/app.css"));
        assert!(!under_prefix("/static/", "/static"));
        assert!(under_prefix("/static", "/static"));
        assert!(under_prefix("/static", "/static/x"));
        assert!(!under_prefix("/static", "/staticfiles"));
        assert!(!under_prefix("/static/", "/private"));
    }

    #[test]
    fn first_match_wins_and_hosts_must_agree() {
        let routes = vec![
            route(Some("admin.example.com"), "/", Access::Login),
            route(None, "/static/", Access::Public),
            route(None, "/", Access::Login),
        ];
        assert_eq!(
            find_route(&routes, "admin.example.com", "/static/x").map(|r| r.0),
            Some(0)
        );
        assert_eq!(
            find_route(&routes, "app.example.com", "/static/x").map(|r| r.0),
            Some(1)
        );
        assert_eq!(
            find_route(&routes, "app.example.com", "/private").map(|r| r.0),
            Some(2)
        );
        assert!(find_route(&routes[..2], "app.example.com", "/private").is_none());
    }
}
