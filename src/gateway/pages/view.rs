//! What every own page needs to render: the snapshot's pages, the language
//! picked for this request (`Accept-Language`, else `ui.language`), and the
//! values every template gets (`lang`, `prefix`, `title`, the stylesheet
//! and logo URLs, `app_url`). Never puts raw HTML into a template value.

use minijinja::{context, Value};
use pingora::http::RequestHeader;

use crate::gateway::state::Snapshot;

/// Where "Back to the app" leads: the app behind the gateway.
const APP_URL: &str = "/";

pub struct View<'a> {
    pub snap: &'a Snapshot,
    pub lang: &'a str,
}

impl<'a> View<'a> {
    /// The view for a request: its language from `Accept-Language`.
    pub fn new(snap: &'a Snapshot, req: &RequestHeader) -> View<'a> {
        let accept = req
            .headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        View {
            snap,
            lang: snap.settings.ui.pages.language_for(accept),
        }
    }

    /// The view when the request is not at hand: `ui.language`.
    pub fn configured(snap: &'a Snapshot) -> View<'a> {
        View {
            snap,
            lang: snap.settings.ui.pages.language_for(None),
        }
    }

    pub fn prefix(&self) -> &'a str {
        &self.snap.settings.server.prefix
    }

    /// A message in this view's language.
    pub fn t(&self, key: &str) -> String {
        self.snap.settings.ui.pages.text(self.lang, key, None, &[])
    }

    /// A message that depends on a number (plural forms).
    pub fn tn(&self, key: &str, n: usize) -> String {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.snap
            .settings
            .ui
            .pages
            .text(self.lang, key, Some(n), &[])
    }

    /// A message with `{name}` placeholders.
    pub fn ta(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.snap.settings.ui.pages.text(self.lang, key, None, args)
    }

    /// "3 minutes ago".
    pub fn ago(&self, d: std::time::Duration) -> String {
        self.snap.settings.ui.pages.ago(self.lang, d)
    }

    /// Renders template `name` with `title` and the page's own values on
    /// top of what every page gets.
    pub fn render(&self, name: &str, title: &str, page: Value) -> String {
        let ui = &self.snap.settings.ui.pages;
        let prefix = self.prefix();
        let base = context! {
            lang => self.lang,
            prefix => prefix,
            title => title,
            app_url => APP_URL,
            stylesheet_url => format!("{prefix}/assets/gatehouse.css?v={}", ui.stylesheet_version),
            logo_url => ui.logo_url(prefix),
        };
        ui.render(name, context! { ..page, ..base })
    }

    /// A plain page: a heading, a sentence, links (href, text) and the way
    /// back to the app.
    pub fn message_page(&self, heading: &str, message: &str, links: &[(String, String)]) -> String {
        let links: Vec<Value> = links
            .iter()
            .map(|(href, text)| context! { href => href, text => text })
            .collect();
        self.render(
            "message.html",
            heading,
            context! { heading => heading, message => message, links => links },
        )
    }
}
