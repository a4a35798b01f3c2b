//! "Firefox on Linux": a short, human name for a device, read from its user
//! agent, for the devices and "ask" pages (which add the browser's version
//! and say it in the page's language). Pure, and never fails.

/// What the pages show of a user agent; `None` where it says nothing known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub browser: Option<&'static str>,
    /// The major version ("130"), digits only.
    pub version: Option<String>,
    pub system: Option<&'static str>,
}

/// The browser, its major version and the system, as far as known.
pub fn parse(ua: &str) -> Device {
    let browser = BROWSERS.iter().find(|(needle, _)| ua.contains(needle));
    // Safari's own version is in `Version/`, not in `Safari/` (WebKit's).
    let version_token = match browser {
        Some(("Safari/", _)) => Some("Version/"),
        Some((needle, _)) => Some(*needle),
        None => None,
    };
    let version = version_token.and_then(|token| {
        let at = ua.find(token)? + token.len();
        let major: String = ua
            .get(at..)?
            .chars()
            .take_while(char::is_ascii_digit)
            .take(6)
            .collect();
        (!major.is_empty()).then_some(major)
    });
    Device {
        browser: browser.map(|(_, name)| *name),
        version,
        system: SYSTEMS
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map(|(_, name)| *name),
    }
}

// Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
const BROWSERS: [(&str, &str); 8] = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
];

const SYSTEMS: [(&str, &str); 7] = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
];

fn browser(ua: &str) -> &'static str {
    parse(ua).browser.unwrap_or("Unknown browser")
}

fn system(ua: &str) -> &'static str {
    parse(ua).system.unwrap_or("an unknown system")
}

pub fn describe(user_agent: &str) -> String {
    if user_agent.trim().is_empty() {
        return "Unknown device".to_string();
    }
    format!("{} on {}", browser(user_agent), system(user_agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions() {
        let firefox =
            parse("Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0");
        assert_eq!(
            firefox,
            Device {
                browser: Some("Firefox"),
                version: Some("130".into()),
                system: Some("Linux")
            }
        );
        let safari = parse("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15");
        assert_eq!(safari.version.as_deref(), Some("17"));
        let chrome = parse("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 Safari/537.36");
        assert_eq!(
            (chrome.browser, chrome.version.as_deref()),
            (Some("Chrome"), Some("131"))
        );
        assert_eq!(
            parse("Firefox/"),
            Device {
                browser: Some("Firefox"),
                version: None,
                system: None
            }
        );
        assert_eq!(
            parse(""),
            Device {
                browser: None,
                version: None,
                system: None
            }
        );
    }

    #[test]
    fn names_common_browsers() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0 Safari/537.36 Edg/129.0", "Edge on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/129.0 Mobile/15E148 Safari/604.1", "Chrome on iOS"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0 Mobile Safari/537.36", "Chrome on Android"),
            ("curl/8.5.0", "curl on an unknown system"),
            ("", "Unknown device"),
        ];
        for (ua, want) in cases {
            assert_eq!(describe(ua), want, "{ua}");
        }
    }
}
