//! The gateway's own pages: minijinja templates embedded in the binary,
//! each replaceable by a file of the same name in `ui.templates_dir`; the
//! message catalog they speak through (`t("key", n=…)`); the stylesheet,
//! colours and logo. Everything is loaded and every page trial-rendered at
//! config load, so a broken template is a `check-config` error naming its
//! file and line, and a reload that breaks one keeps the old pages.
//! Autoescaping is on for `.html`: no value reaches a page unescaped.
//! Never reads a file while a request waits.

pub mod catalog;
pub mod language;
pub mod theme;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Kwargs, Value};
use minijinja::{context, AutoEscape, Environment, State};

use catalog::Catalog;
use theme::Theme;

/// Every built-in template, by the name an override must have.
pub const BUILTIN: [(&str, &str); 7] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("logout.html", include_str!("templates/logout.html")),
    ("message.html", include_str!("templates/message.html")),
    (
        "choose_device.html",
        include_str!("templates/choose_device.html"),
    ),
    ("devices.html", include_str!("templates/devices.html")),
    ("password.html", include_str!("templates/password.html")),
];
pub const STYLESHEET: &str = include_str!("assets/gatehouse.css");

/// The most a logo file may weigh: it is held in memory and sent with
/// every page view that is not cached.
const MAX_LOGO_BYTES: u64 = 256 * 1024;

/// What the operator configured under `[ui]` for the pages.
#[derive(Debug, Clone, Default)]
pub struct UiOptions {
    pub templates_dir: Option<PathBuf>,
    pub theme: Theme,
    /// A file served at `{prefix}/assets/logo`, or a same-origin URL path.
    pub logo: Option<LogoSource>,
    /// The fallback language (`ui.language`).
    pub language: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogoSource {
    File(PathBuf),
    Path(String),
}

/// A problem with the pages: the file (a template or catalog), its line
/// when known, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct UiError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// A logo read from its file at load.
#[derive(Debug, Clone)]
pub struct Logo {
    pub content_type: &'static str,
    pub bytes: bytes::Bytes,
    version: String,
}

/// The loaded pages. Cheap to share; swapped whole with the config.
#[derive(Clone)]
pub struct Ui {
    env: Arc<Environment<'static>>,
    catalog: Arc<Catalog>,
    languages: Vec<String>,
    pub fallback_language: String,
    /// The built-in stylesheet (or `gatehouse.css` from `templates_dir`)
    /// with the operator's colours appended.
    pub stylesheet: bytes::Bytes,
    /// Changes whenever the stylesheet does, so it can be cached long.
    pub stylesheet_version: String,
    pub logo: Option<Logo>,
    logo_path: Option<String>,
    /// Which files came from `templates_dir` (for `check-config`).
    pub overridden: Vec<String>,
    /// Changes whenever anything a page is made of does (for the reload
    /// summary).
    pub fingerprint: String,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("languages", &self.languages)
            .field("fallback_language", &self.fallback_language)
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

/// Sample values every page is trial-rendered with at load.
fn sample_context(name: &str) -> Value {
    let device = context! {
        id => "00", name => "Firefox 130 on Linux", address => "192.0.2.1",
        signed_in => "1 hour ago", last_active => "just now", this => true, last_used => true,
    };
    context! {
        lang => "en", title => "Sign in", prefix => "/.gatehouse", app_url => "/",
        stylesheet_url => "/.gatehouse/assets/gatehouse.css", logo_url => "/logo.png",
        page => name, csrf_token => "token", rd => "/", username => "alice", user => "alice",
        notice => context! { kind => "error", text => "Incorrect username or password." },
        devices => vec![device.clone(), device], others => 1, pending => "p",
        cancel_url => "/.gatehouse/login", min_length => 10, heading => "Heading",
        message => "Message", links => vec![context! { href => "/", text => "Home" }],
        password_url => "/.gatehouse/password",
    }
}

impl Ui {
    /// The built-in pages with no options (the demo).
    pub fn builtin() -> Result<Ui, UiError> {
        Ui::load(&UiOptions {
            language: catalog::REFERENCE.into(),
            ..UiOptions::default()
        })
    }

    /// No pages at all: what a refused config carries, never served.
    pub fn empty() -> Ui {
        Ui {
            env: Arc::new(Environment::new()),
            catalog: Arc::new(Catalog::empty()),
            languages: Vec::new(),
            fallback_language: catalog::REFERENCE.into(),
            stylesheet: bytes::Bytes::from_static(STYLESHEET.as_bytes()),
            stylesheet_version: String::new(),
            logo: None,
            logo_path: None,
            overridden: Vec::new(),
            fingerprint: String::new(),
        }
    }

    /// Loads templates, catalogs, stylesheet and logo, and trial-renders
    /// every page: any problem names its file and line.
    pub fn load(options: &UiOptions) -> Result<Ui, UiError> {
        let mut catalog = Catalog::builtin().map_err(|e| UiError {
            file: PathBuf::from("(built-in messages)"),
            line: None,
            message: e.to_string(),
        })?;
        let mut sources: BTreeMap<String, (PathBuf, String)> = BUILTIN
            .iter()
            .map(|(n, s)| {
                (
                    (*n).to_string(),
                    (PathBuf::from(format!("(built-in {n})")), (*s).to_string()),
                )
            })
            .collect();
        let mut overridden = Vec::new();
        let mut catalog_texts: Vec<String> = Vec::new();
        let mut stylesheet = STYLESHEET.to_string();
        if let Some(dir) = &options.templates_dir {
            let entries = std::fs::read_dir(dir).map_err(|e| UiError {
                file: dir.clone(),
                line: None,
                message: format!("cannot read the templates directory: {e}"),
            })?;
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for path in files {
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                let read = || {
                    std::fs::read_to_string(&path).map_err(|e| UiError {
                        file: path.clone(),
                        line: None,
                        message: format!("cannot read the file: {e}"),
                    })
                };
                if name.ends_with(".html") {
                    overridden.push(name.clone());
                    sources.insert(name, (path.clone(), read()?));
                } else if name == "gatehouse.css" {
                    stylesheet = read()?;
                    overridden.push(name);
                } else if let Some(lang) = name
                    .strip_prefix("messages.")
                    .and_then(|n| n.strip_suffix(".toml"))
                {
                    let text = read()?;
                    let valid_tag = !lang.is_empty()
                        && lang.len() <= 35
                        && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                    if !valid_tag {
                        return Err(UiError {
                            file: path.clone(),
                            line: None,
                            message: format!(
                                "{lang:?} is not a language tag (like \"de\" or \"pt-BR\")"
                            ),
                        });
                    }
                    catalog.extend(lang, &text).map_err(|e| UiError {
                        line: line_of_key(&text, &e.key),
                        file: path.clone(),
                        message: e.to_string(),
                    })?;
                    catalog_texts.push(format!("{lang}\n{text}"));
                    overridden.push(name);
                }
            }
        }
        stylesheet.push_str(&options.theme.css());

        let language = options.language.to_ascii_lowercase();
        if !catalog.has(&language) {
            return Err(UiError {
                file: options
                    .templates_dir
                    .as_ref()
                    .map_or_else(|| PathBuf::from("(built-in messages)"), |d| d.join(format!("messages.{language}.toml"))),
                line: None,
                message: format!(
                    "ui.language = {language:?} has no messages: built in are \"en\" and \"es\"; add messages.{language}.toml to ui.templates_dir for another"
                ),
            });
        }
        let languages: Vec<String> = catalog.languages().map(str::to_string).collect();
        let catalog = Arc::new(catalog);

        let mut env = Environment::new();
        // minijinja's HTML escaping also turns `/` into `&#x2f;`: safe, but
        // every URL in a page would read `&#x2f;.gatehouse&#x2f;login`.
        // The five characters that can end text or an attribute are enough.
        env.set_formatter(|out, state, value| {
            let plain = state.auto_escape() == AutoEscape::Html
                && !value.is_safe()
                && !value.is_undefined()
                && !value.is_none();
            if plain {
                out.write_str(&escape(&value.to_string()))
                    .map_err(minijinja::Error::from)
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let t_catalog = Arc::clone(&catalog);
        let fallback = language.clone();
        env.add_function(
            "t",
            move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let lang = state
                    .lookup("lang")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| fallback.clone());
                let n: Option<u64> = kwargs.get("n")?;
                let mut args: Vec<(String, String)> = Vec::new();
                for name in kwargs.args() {
                    if name != "n" {
                        let v: Value = kwargs.get(name)?;
                        args.push((name.to_string(), v.to_string()));
                    }
                }
                let args: Vec<(&str, &str)> =
                    args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Ok(t_catalog.text(&lang, key, n, &args))
            },
        );
        let files: BTreeMap<String, PathBuf> = sources
            .iter()
            .map(|(n, (p, _))| (n.clone(), p.clone()))
            .collect();
        let located = |e: &minijinja::Error, fallback_name: &str| UiError {
            file: files
                .get(e.name().unwrap_or(fallback_name))
                .cloned()
                .unwrap_or_else(|| PathBuf::from(fallback_name)),
            line: e.line(),
            message: describe(e),
        };
        for (name, (_, text)) in sources.clone() {
            let checked = name.clone();
            env.add_template_owned(name, text)
                .map_err(|e| located(&e, &checked))?;
        }
        for (name, _) in BUILTIN.iter().filter(|(n, _)| *n != "layout.html") {
            let name: &str = name;
            let tmpl = env.get_template(name).map_err(|e| located(&e, name))?;
            tmpl.render(sample_context(name))
                .map_err(|e| located(&e, name))?;
        }

        let (logo, logo_path) = match &options.logo {
            None => (None, None),
            Some(LogoSource::Path(p)) => (None, Some(p.clone())),
            Some(LogoSource::File(path)) => (Some(read_logo(path)?), None),
        };
        let stylesheet_version = short_hash(&[stylesheet.as_bytes()]);
        let mut parts: Vec<&[u8]> = vec![stylesheet.as_bytes(), language.as_bytes()];
        for (name, (_, text)) in &sources {
            parts.push(name.as_bytes());
            parts.push(text.as_bytes());
        }
        parts.extend(catalog_texts.iter().map(String::as_bytes));
        if let Some(l) = &logo {
            parts.push(&l.bytes);
        }
        if let Some(p) = &logo_path {
            parts.push(p.as_bytes());
        }
        let fingerprint = short_hash(&parts);
        Ok(Ui {
            env: Arc::new(env),
            catalog,
            languages,
            fallback_language: language,
            stylesheet: bytes::Bytes::from(stylesheet),
            stylesheet_version,
            logo,
            logo_path,
            overridden,
            fingerprint,
        })
    }

    /// The language for a request with this `Accept-Language`.
    pub fn language_for(&self, accept_language: Option<&str>) -> &str {
        language::negotiate(accept_language, &self.languages, &self.fallback_language)
    }

    /// One message in `lang` (see `Catalog::text`).
    pub fn text(&self, lang: &str, key: &str, n: Option<u64>, args: &[(&str, &str)]) -> String {
        self.catalog.text(lang, key, n, args)
    }

    /// Where the logo is, for `<img src>`: the served file or the path.
    pub fn logo_url(&self, prefix: &str) -> Option<String> {
        match (&self.logo, &self.logo_path) {
            // Versioned like the stylesheet: a new logo shows at once
            // although the old one may be cached for an hour.
            (Some(l), _) => Some(format!("{prefix}/assets/logo?v={}", l.version)),
            (None, Some(p)) => Some(p.clone()),
            (None, None) => None,
        }
    }

    /// Renders page `name` (`login.html`, ...). Pages were trial-rendered
    /// at load; should one still fail on real values, the user gets a
    /// plain page and the log says why.
    pub fn render(&self, name: &str, ctx: Value) -> String {
        let rendered = self.env.get_template(name).and_then(|t| t.render(ctx));
        match rendered {
            Ok(html) => html,
            Err(e) => {
                tracing::error!("page {name} could not be rendered: {}", describe(&e));
                "<!doctype html><meta charset=\"utf-8\"><title>Error</title><p>This page could not be shown. Please try again.</p>".to_string()
            }
        }
    }
}

/// 12 hex digits of SHA-256 over `parts` (each length-prefixed).
fn short_hash(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_le_bytes());
        ctx.update(p);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A template error in one line: what, and the detail minijinja has.
fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// The line where `key` (`login.failed`) is set in a catalog file: its last
/// segment at the start of a line, at or after its section header.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let (section, last) = key.rsplit_once('.').unwrap_or(("", key));
    let mut in_section = section.is_empty();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l.trim_matches(|c| c == '[' || c == ']').trim() == section;
        }
        let sets = l
            .strip_prefix(last)
            .is_some_and(|r| r.trim_start().starts_with('='));
        let dotted = l
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='));
        if (in_section && sets) || dotted {
            return Some(i + 1);
        }
    }
    None
}

fn read_logo(path: &Path) -> Result<Logo, UiError> {
    let err = |message: String| UiError {
        file: path.to_path_buf(),
        line: None,
        message,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let content_type = match ext.as_deref() {
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        _ => return Err(err("expected a .png, .svg, .jpg, .webp or .gif file".into())),
    };
    let size = std::fs::metadata(path)
        .map_err(|e| err(format!("cannot read the logo: {e}")))?
        .len();
    if size > MAX_LOGO_BYTES {
        return Err(err(format!(
            "the logo is {size} bytes; at most {MAX_LOGO_BYTES} are allowed"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read the logo: {e}")))?;
    Ok(Logo {
        content_type,
        version: short_hash(&[&bytes]),
        bytes: bytes.into(),
    })
}

/// Escapes text for HTML element content and quoted attributes (for the
/// few bits of HTML written outside templates: the demo app).
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

/// The catalog key (and number) for a duration in the past.
fn ago_key(d: std::time::Duration) -> (Option<u64>, &'static str) {
    let s = d.as_secs();
    match s {
        0..=59 => (None, "common.just_now"),
        60..=3599 => (Some(s / 60), "common.minutes_ago"),
        3600..=86_399 => (Some(s / 3600), "common.hours_ago"),
        _ => (Some(s / 86_400), "common.days_ago"),
    }
}

/// "3 minutes ago", in English, for the command line's session table.
pub fn ago(d: std::time::Duration) -> String {
    static ENGLISH: std::sync::OnceLock<Option<Catalog>> = std::sync::OnceLock::new();
    let (n, key) = ago_key(d);
    match ENGLISH.get_or_init(|| Catalog::builtin().ok()) {
        Some(c) => c.text(catalog::REFERENCE, key, n, &[]),
        None => key.to_string(),
    }
}

impl Ui {
    /// "3 minutes ago" in `lang`.
    pub fn ago(&self, lang: &str, d: std::time::Duration) -> String {
        let (n, key) = ago_key(d);
        self.text(lang, key, n, &[])
    }
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
    fn ago_reads_naturally() {
        use std::time::Duration;
        assert_eq!(ago(Duration::from_secs(5)), "just now");
        assert_eq!(ago(Duration::from_secs(60)), "1 minute ago");
        assert_eq!(ago(Duration::from_secs(7200)), "2 hours ago");
        assert_eq!(ago(Duration::from_secs(3 * 86_400)), "3 days ago");
        let ui = Ui::builtin().unwrap();
        assert_eq!(ui.ago("es", Duration::from_secs(120)), "hace 2 minutos");
    }

    #[test]
    fn built_in_pages_render_escaped_in_the_layout() {
        let ui = Ui::builtin().unwrap();
        let html = ui.render(
            "message.html",
            context! { lang => "es", title => "T", heading => "<b>", message => "m", app_url => "/", stylesheet_url => "/s.css" },
        );
        assert!(html.starts_with("<!doctype html>"), "{html}");
        assert!(html.contains("<html lang=\"es\">"));
        assert!(html.contains("<h1>&lt;b&gt;</h1>"), "{html}");
        assert!(html.contains("Volver a la aplicación"), "{html}");
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (n, t) in files {
            std::fs::write(dir.path().join(n), t).unwrap();
        }
        dir
    }

    fn load_dir(dir: &Path) -> Result<Ui, UiError> {
        Ui::load(&UiOptions {
            templates_dir: Some(dir.to_path_buf()),
            language: "en".into(),
            ..UiOptions::default()
        })
    }

    #[test]
    fn a_broken_template_names_its_file_and_line() {
        let dir = dir_with(&[("login.html", "{% extends \"layout.html\" %}\n{% block content %}\n<p>{{ user }</p>\n{% endblock %}\n")]);
        let e = load_dir(dir.path()).unwrap_err();
        assert_eq!(e.file, dir.path().join("login.html"));
        assert_eq!(e.line, Some(3), "{e:?}");
        let dir = dir_with(&[("devices.html", "ok\n{{ devices | no_such_filter }}\n")]);
        let e = load_dir(dir.path()).unwrap_err();
        assert_eq!(e.file, dir.path().join("devices.html"));
        assert_eq!(e.line, Some(2), "{e:?}");
    }

    #[test]
    fn a_catalog_typo_names_its_line() {
        let dir = dir_with(&[(
            "messages.de.toml",
            "[login]\nsubmit = \"Anmelden\"\nsubmitt = \"x\"\n",
        )]);
        let e = load_dir(dir.path()).unwrap_err();
        assert_eq!(e.file, dir.path().join("messages.de.toml"));
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.contains("login.submitt"), "{e:?}");
    }

    #[test]
    fn unknown_language_is_refused() {
        let e = Ui::load(&UiOptions {
            language: "de".into(),
            ..UiOptions::default()
        })
        .unwrap_err();
        assert!(e.message.contains("messages.de.toml"), "{e:?}");
    }

    #[test]
    fn overrides_and_colours() {
        let dir = dir_with(&[
            ("message.html", "custom {{ heading }}"),
            ("messages.de.toml", "[common]\nback_to_app = \"Zurück\"\n"),
        ]);
        let mut options = UiOptions {
            templates_dir: Some(dir.path().to_path_buf()),
            language: "de".into(),
            ..UiOptions::default()
        };
        options.theme.accent = theme::Color::parse("#006633");
        let ui = Ui::load(&options).unwrap();
        assert_eq!(
            ui.render("message.html", context! { heading => "<x>" }),
            "custom &lt;x&gt;"
        );
        assert_eq!(ui.language_for(Some("fr")), "de");
        assert_eq!(ui.language_for(Some("es-AR,en;q=0.5")), "es");
        let css = String::from_utf8_lossy(&ui.stylesheet).into_owned();
        assert!(css.ends_with(":root { --accent: #006633; --ring: #006633; }\n"));
        assert_ne!(
            ui.stylesheet_version,
            Ui::builtin().unwrap().stylesheet_version
        );
    }
}
