//! `[ui]` keys that shape the pages: `templates_dir`, `language`, `logo`
//! and the colours. Loads and trial-renders the pages here, so a broken
//! template or catalog is a config error (its own file and line) and a
//! reload that breaks one is refused whole. Never lets a colour or logo
//! through that the pages could not use.

use std::path::Path;

use super::error::{ConfigError, ErrorSink, KeyPath};
use super::file::UiSection;
use super::validate::relative_to;
use crate::ui::theme::{Color, Theme};
use crate::ui::{LogoSource, Ui, UiOptions};

/// The pages for `[ui]`; on any error (pushed to `sink`) the built-in ones,
/// which are never served because the config is refused.
pub(super) fn validate_pages(
    path: &Path,
    ui: &UiSection,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> Ui {
    let errors_before = sink.errors.len();
    let mut theme = Theme::default();
    let mut color = |name: &str, value: &Option<String>, check: fn(Color) -> Result<(), String>| {
        let text = value.as_deref()?;
        match Color::parse(text) {
            None => {
                sink.push(
                    &key.key(name),
                    format!("expected a colour like \"#2458c6\" or \"#fff\", found {text:?}"),
                );
                None
            }
            Some(c) => match check(c) {
                Ok(()) => Some(c),
                Err(why) => {
                    sink.push(&key.key(name), why);
                    None
                }
            },
        }
    };
    theme.accent = color("accent_color", &ui.accent_color, Theme::check_accent);
    theme.ring_dark = color(
        "focus_color_dark",
        &ui.focus_color_dark,
        Theme::check_ring_dark,
    );

    let logo = match (&ui.logo, &ui.logo_url) {
        (Some(_), Some(_)) => {
            sink.push(
                &key.key("logo_url"),
                "set ui.logo (a file the gateway serves) or ui.logo_url, not both",
            );
            None
        }
        (Some(file), None) => Some(LogoSource::File(relative_to(path, file))),
        (None, Some(url)) => {
            // The pages' Content-Security-Policy allows images from this
            // origin only: a logo on another site would never show.
            let same_origin = url.starts_with('/')
                && !url.starts_with("//")
                && !url
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
            if !same_origin {
                sink.push(
                    &key.key("logo_url"),
                    format!("expected a path on this site like \"/static/logo.png\" (the pages allow no images from other sites; use ui.logo for a file), found {url:?}"),
                );
            }
            same_origin.then(|| LogoSource::Path(url.clone()))
        }
        (None, None) => None,
    };

    let language = ui.language.clone().unwrap_or_else(|| "en".into());
    let options = UiOptions {
        templates_dir: ui.templates_dir.as_deref().map(|d| relative_to(path, d)),
        theme,
        logo,
        language,
    };
    if sink.errors.len() > errors_before {
        return fallback();
    }
    match Ui::load(&options) {
        Ok(pages) => pages,
        Err(e) => {
            let field = if e.message.contains("ui.language") {
                "language"
            } else if options.logo.is_some() && e.message.contains("logo") {
                "logo"
            } else {
                "templates_dir"
            };
            sink.errors.push(ConfigError {
                file: e.file,
                line: e.line,
                key: key.key(field).to_string(),
                message: e.message,
            });
            fallback()
        }
    }
}

/// Pages for a config that is refused anyway.
fn fallback() -> Ui {
    Ui::builtin().unwrap_or_else(|_| Ui::empty())
}
