//! Route matching: the most specific `[[route]]` wins, whatever the order in
//! the file. A route naming the request's host beats one for any host; among
//! those, the longest matching `path_prefix` wins. Validation refuses two
//! routes with the same host and prefix, so there is never a tie. Pure.

use std::cmp::Reverse;

use crate::config::Route;

/// True when `path` is `prefix` or lies under it on a segment boundary, so
/// `/static` covers `/static/x` but not `/staticfiles`.
pub fn under_prefix(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// How specific a route is: a named host first, then a longer prefix.
/// Two matching routes never compare equal once duplicates are refused
/// (two different prefixes of one path differ in length).
fn specificity(route: &Route) -> (bool, usize) {
    (route.host.is_some(), route.path_prefix.len())
}

/// Index and route of the most specific match.
pub fn find_route<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<(usize, &'a Route)> {
    routes
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.host.as_deref().is_none_or(|h| h == host) && under_prefix(&r.path_prefix, path)
        })
        .max_by_key(|(_, r)| specificity(r))
}

/// Puts routes in the order a request tries them (most specific first), the
/// order `check-config` shows. Stable, so equal routes keep the file order.
pub fn sort_by_specificity(routes: &mut [Route]) {
    routes.sort_by_key(|r| Reverse(specificity(r)));
}

/// The resolved route table, one line per route, most specific first: what
/// an operator reads to see which paths are public.
pub fn describe(routes: &[Route]) -> String {
    let rows: Vec<[String; 5]> = routes
        .iter()
        .map(|r| {
            let scheme = if r.upstream_options.tls.is_some() {
                "https://"
            } else {
                ""
            };
            let upstreams: Vec<String> =
                r.upstreams.iter().map(|a| format!("{scheme}{a}")).collect();
            [
                r.host.clone().unwrap_or_else(|| "*".into()),
                r.path_prefix.clone(),
                match r.access {
                    crate::config::Access::Public => "public".into(),
                    crate::config::Access::Login => "login".into(),
                },
                if r.groups.is_empty() {
                    "-".into()
                } else {
                    r.groups.join(",")
                },
                if upstreams.is_empty() {
                    "(forward auth only)".into()
                } else {
                    upstreams.join(",")
                },
            ]
        })
        .collect();
    let header = ["HOST", "PATH PREFIX", "ACCESS", "GROUPS", "UPSTREAM"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Access;
    use proptest::prelude::*;

    fn route(host: Option<&str>, prefix: &str, access: Access) -> Route {
        Route {
            host: host.map(str::to_string),
            path_prefix: prefix.into(),
            upstreams: vec![],
            access,
            groups: vec![],
            upstream_options: Default::default(),
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

    /// The route's (host, prefix), which names it whatever its index.
    fn winner(routes: &[Route], host: &str, path: &str) -> Option<(Option<String>, String)> {
        find_route(routes, host, path).map(|(_, r)| (r.host.clone(), r.path_prefix.clone()))
    }

    #[test]
    fn a_public_root_listed_first_does_not_open_a_login_prefix() {
        let routes = vec![
            route(None, "/", Access::Public),
            route(None, "/app", Access::Login),
        ];
        let (_, r) = find_route(&routes, "x", "/app/settings").unwrap();
        assert_eq!(r.access, Access::Login);
        let (_, r) = find_route(&routes, "x", "/about").unwrap();
        assert_eq!(r.access, Access::Public);
    }

    #[test]
    fn a_named_host_beats_a_longer_prefix_for_any_host() {
        let routes = vec![
            route(None, "/static/", Access::Public),
            route(Some("admin.example.com"), "/", Access::Login),
            route(None, "/", Access::Login),
        ];
        assert_eq!(
            winner(&routes, "admin.example.com", "/static/x"),
            Some((Some("admin.example.com".into()), "/".into()))
        );
        assert_eq!(
            winner(&routes, "app.example.com", "/static/x"),
            Some((None, "/static/".into()))
        );
        assert_eq!(
            winner(&routes, "app.example.com", "/private"),
            Some((None, "/".into()))
        );
        assert!(find_route(&routes[..2], "app.example.com", "/private").is_none());
    }

    #[test]
    fn sorting_puts_the_most_specific_first() {
        let mut routes = vec![
            route(None, "/", Access::Public),
            route(None, "/app/", Access::Login),
            route(Some("a.example"), "/", Access::Login),
        ];
        sort_by_specificity(&mut routes);
        let order: Vec<_> = routes
            .iter()
            .map(|r| (r.host.as_deref(), r.path_prefix.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![(Some("a.example"), "/"), (None, "/app/"), (None, "/")]
        );
    }

    #[test]
    fn the_table_lists_every_route_with_its_access() {
        let mut r = route(None, "/admin/", Access::Login);
        r.groups = vec!["staff".into(), "ops".into()];
        r.upstreams = vec!["127.0.0.1:8000".parse().unwrap()];
        let table = describe(&[r, route(None, "/", Access::Public)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("HOST"), "{table}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            ["*", "/admin/", "login", "staff,ops", "127.0.0.1:8000"]
        );
        // A route without upstream is only checked for a proxy in front.
        assert!(lines[2].ends_with("  (forward auth only)"), "{table}");
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells[..4], ["*", "/", "public", "-"]);
    }

    #[test]
    fn the_table_says_which_upstreams_are_reached_over_tls() {
        let mut r = route(None, "/", Access::Login);
        r.upstreams = vec!["127.0.0.1:8443".parse().unwrap()];
        r.upstream_options.tls = Some(crate::config::UpstreamTls {
            sni: None,
            ca: None,
        });
        let table = describe(&[r]);
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .ends_with("  https://127.0.0.1:8443"),
            "{table}"
        );
    }

    fn arb_routes() -> impl Strategy<Value = Vec<Route>> {
        let host = prop::option::of(prop::sample::select(vec!["a.example", "b.example"]));
        let prefix = prop::sample::select(vec![
            "/", "/a", "/a/", "/a/b", "/a/b/", "/ab", "/b", "/b/c/",
        ]);
        let access = prop::sample::select(vec![Access::Public, Access::Login]);
        prop::collection::vec((host, prefix, access), 1..10).prop_map(|raw| {
            // Validation refuses duplicate (host, prefix) pairs; keep the first.
            let mut seen = std::collections::HashSet::new();
            raw.into_iter()
                .filter(|(h, p, _)| seen.insert((*h, *p)))
                .map(|(h, p, a)| route(h, p, a))
                .collect()
        })
    }

    proptest! {
        /// Whatever the order of the routes in the file, the same route wins.
        #[test]
        fn the_order_of_routes_never_changes_the_winner(
            (routes, shuffled) in arb_routes().prop_flat_map(|r| {
                let s = Just(r.clone()).prop_shuffle();
                (Just(r), s)
            }),
            host in prop::sample::select(vec!["a.example", "b.example", "c.example"]),
            path in prop::sample::select(vec!["/", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/ab/x", "/b", "/b/c/d", "/c"]),
        ) {
            let expected = winner(&routes, host, path);
            prop_assert_eq!(winner(&shuffled, host, path), expected.clone());
            let mut sorted = shuffled.clone();
            sort_by_specificity(&mut sorted);
            // In specificity order, the first match is the winner.
            let first = sorted
                .iter()
                .find(|r| r.host.as_deref().is_none_or(|h| h == host) && under_prefix(&r.path_prefix, path))
                .map(|r| (r.host.clone(), r.path_prefix.clone()));
            prop_assert_eq!(first, expected);
        }
    }
}
