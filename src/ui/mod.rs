//! The gateway's own pages and assets, embedded in the binary. Templates use
//! `{{name}}` for escaped text and `{{{name}}}` for HTML the code built.

use std::borrow::Cow;

pub const LAYOUT: &str = include_str!("templates/layout.html");
pub const LOGIN: &str = include_str!("templates/login.html");
pub const LOGOUT: &str = include_str!("templates/logout.html");
pub const MESSAGE: &str = include_str!("templates/message.html");
pub const CHOOSE_DEVICE: &str = include_str!("templates/choose_device.html");
pub const DEVICES: &str = include_str!("templates/devices.html");
pub const PASSWORD: &str = include_str!("templates/password.html");
pub const STYLESHEET: &str = include_str!("assets/gatehouse.css");

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// "3 minutes ago", for last-seen times.
pub fn ago(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..=59 => return "just now".to_string(),
        60..=3599 => (s / 60, "minute"),
        3600..=86_399 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A value for a template slot.
pub enum Slot<'a> {
    Text(&'a str),
    Html(&'a str),
}

/// Fills `{{name}}` (escaped) and `{{{name}}}` (raw) slots; unknown slots
/// render empty so a custom template cannot leak its placeholders.
pub fn render(template: &str, slots: &[(&str, Slot)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let (raw, open, close) = if after.starts_with("{{{") {
            (true, 3, "}}}")
        } else {
            (false, 2, "}}")
        };
        let Some(end) = after[open..].find(close) else {
            out.push_str(after);
            return out;
        };
        let name = after[open..open + end].trim();
        if let Some((_, slot)) = slots.iter().find(|(n, _)| *n == name) {
            match (slot, raw) {
                (Slot::Html(h), true) => out.push_str(h),
                (Slot::Html(h), false) | (Slot::Text(h), _) => out.push_str(&escape(h)),
            }
        }
        rest = &after[open + end + close.len()..];
    }
    out.push_str(rest);
    out
}

/// A whole page: `content` placed in the shared layout.
pub fn page(title: &str, prefix: &str, content: &str) -> String {
    render(
        LAYOUT,
        &[
            ("title", Slot::Text(title)),
            ("prefix", Slot::Text(prefix)),
            ("content", Slot::Html(content)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_break_out() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn renders_slots() {
        let t = "<p>{{ who }}</p>{{{html}}}{{missing}}{{html}}";
        let out = render(
            t,
            &[("who", Slot::Text("<b>")), ("html", Slot::Html("<i>x</i>"))],
        );
        assert_eq!(out, "<p>&lt;b&gt;</p><i>x</i>&lt;i&gt;x&lt;/i&gt;");
        assert_eq!(render("tail {{open", &[]), "tail {{open");
    }

    #[test]
    fn ago_reads_naturally() {
        use std::time::Duration;
        assert_eq!(ago(Duration::from_secs(5)), "just now");
        assert_eq!(ago(Duration::from_secs(60)), "1 minute ago");
        assert_eq!(ago(Duration::from_secs(7200)), "2 hours ago");
        assert_eq!(ago(Duration::from_secs(3 * 86_400)), "3 days ago");
    }

    #[test]
    fn pages_use_the_layout() {
        let html = page("Sign in", "/.gatehouse", "<form></form>");
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>Sign in</title>"));
        assert!(html.contains("/.gatehouse/assets/gatehouse.css"));
        assert!(html.contains("<form></form>"));
    }
}
