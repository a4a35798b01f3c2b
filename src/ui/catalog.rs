//! The message catalog: every sentence the gateway's pages show, per
//! language, with plural forms. English and Spanish are built in; an
//! operator adds a language or rewords one with `messages.<lang>.toml` in
//! `ui.templates_dir`. A key missing from a language reads in English, so a
//! partial translation never shows a blank. Never panics on a catalog file.

use std::collections::BTreeMap;
use std::fmt;

const EN: &str = include_str!("messages/en.toml");
const ES: &str = include_str!("messages/es.toml");

/// The language every other falls back to, key by key.
pub const REFERENCE: &str = "en";

/// One message: plain, or chosen by a number.
#[derive(Debug, Clone, PartialEq)]
enum Message {
    Text(String),
    Plural {
        zero: Option<String>,
        one: Option<String>,
        other: String,
    },
}

/// A catalog file that could not be read: which key, and why. The line is
/// worked out by the caller, who has the text.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

type Messages = BTreeMap<String, Message>;

/// Messages of every language known, keyed by language tag (lower case).
#[derive(Debug, Clone)]
pub struct Catalog {
    languages: BTreeMap<String, Messages>,
}

impl Catalog {
    /// The built-in English and Spanish.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let mut languages = BTreeMap::new();
        languages.insert("en".to_string(), parse(EN)?);
        languages.insert("es".to_string(), parse(ES)?);
        Ok(Catalog { languages })
    }

    /// No messages (every key reads as itself).
    pub fn empty() -> Catalog {
        Catalog {
            languages: BTreeMap::new(),
        }
    }

    /// Adds `text` (an operator's `messages.<lang>.toml`) over what `lang`
    /// already has. Every key must be one English has, so a typo is an
    /// error rather than a message that silently never shows.
    pub fn extend(&mut self, lang: &str, text: &str) -> Result<(), CatalogError> {
        let added = parse(text)?;
        let reference = self.languages.get(REFERENCE);
        for (key, msg) in &added {
            match reference.and_then(|r| r.get(key)) {
                None => {
                    return Err(CatalogError {
                        key: key.clone(),
                        message: "no such message (see the built-in en.toml for the keys)".into(),
                    })
                }
                Some(Message::Plural { .. }) if matches!(msg, Message::Text(_)) => {
                    return Err(CatalogError {
                        key: key.clone(),
                        message:
                            "this message takes a number: expected a table with `one` and `other`"
                                .into(),
                    })
                }
                _ => {}
            }
        }
        self.languages
            .entry(lang.to_ascii_lowercase())
            .or_default()
            .extend(added);
        Ok(())
    }

    /// The language tags available, in order.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.keys().map(String::as_str)
    }

    pub fn has(&self, lang: &str) -> bool {
        self.languages.contains_key(&lang.to_ascii_lowercase())
    }

    /// The message `key` in `lang` (else English, else the key itself),
    /// the plural form picked by `n`, `{name}` filled from `args`.
    pub fn text(&self, lang: &str, key: &str, n: Option<u64>, args: &[(&str, &str)]) -> String {
        let found = self
            .languages
            .get(lang)
            .and_then(|m| m.get(key))
            .or_else(|| self.languages.get(REFERENCE).and_then(|m| m.get(key)));
        let Some(msg) = found else {
            return key.to_string();
        };
        let pattern = match msg {
            Message::Text(t) => t,
            // Without a number, the general form: its `{n}` stays for
            // whoever fills it in later (session.js counts down itself).
            Message::Plural { zero, one, other } => match n {
                None => other,
                Some(0) if zero.is_some() => zero.as_ref().unwrap_or(other),
                Some(n) if plural_one(lang, n) => one.as_ref().unwrap_or(other),
                Some(_) => other,
            },
        };
        fill(pattern, n, args)
    }
}

/// Whether `n` takes the "one" form in `lang`: 0 and 1 in French and
/// Portuguese, 1 alone in English, Spanish and most others CLDR lists.
fn plural_one(lang: &str, n: u64) -> bool {
    let primary = lang.split('-').next().unwrap_or(lang);
    match primary {
        "fr" | "pt" => n < 2,
        _ => n == 1,
    }
}

/// Replaces `{n}` and `{name}` placeholders; an unknown one stays visible,
/// so a wrong translation shows up in review rather than vanishing.
fn fill(pattern: &str, n: Option<u64>, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match (name, n) {
            ("n", Some(n)) => out.push_str(&n.to_string()),
            _ => match args.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn parse(text: &str) -> Result<Messages, CatalogError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| CatalogError {
        key: String::new(),
        message: e.message().trim().to_string(),
    })?;
    let mut out = Messages::new();
    flatten("", &table, &mut out)?;
    Ok(out)
}

/// `[login] failed = "..."` becomes `login.failed`; a table with a string
/// `other` is a plural message rather than a section.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Messages) -> Result<(), CatalogError> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, Message::Text(s.clone()));
            }
            toml::Value::Table(t) if t.get("other").is_some_and(toml::Value::is_str) => {
                let form = |name: &str| -> Result<Option<String>, CatalogError> {
                    match t.get(name) {
                        None => Ok(None),
                        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                        Some(_) => Err(CatalogError {
                            key: format!("{key}.{name}"),
                            message: "expected a string".into(),
                        }),
                    }
                };
                if let Some(bad) = t
                    .keys()
                    .find(|n| !["zero", "one", "other"].contains(&n.as_str()))
                {
                    return Err(CatalogError {
                        key: format!("{key}.{bad}"),
                        message: "expected only `zero`, `one` and `other` in a plural message"
                            .into(),
                    });
                }
                let message = Message::Plural {
                    zero: form("zero")?,
                    one: form("one")?,
                    other: form("other")?.unwrap_or_default(),
                };
                out.insert(key, message);
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => {
                return Err(CatalogError {
                    key,
                    message: "expected a string, or a table with `one` and `other`".into(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    #[test]
    fn plural_forms_follow_the_number() {
        let c = catalog();
        let one = c.text("en", "login.device_limit", Some(1), &[]);
        assert!(one.contains("1 other device."), "{one}");
        let two = c.text("en", "login.device_limit", Some(2), &[]);
        assert!(two.contains("2 other devices."), "{two}");
        assert_eq!(
            c.text("en", "common.minutes_ago", Some(1), &[]),
            "1 minute ago"
        );
        assert_eq!(
            c.text("es", "common.minutes_ago", Some(3), &[]),
            "hace 3 minutos"
        );
        assert!(plural_one("fr", 0) && !plural_one("en", 0));
        assert_eq!(
            c.text("es", "idle_warning.seconds", None, &[]),
            "{n} segundos"
        );
    }

    #[test]
    fn spanish_has_every_english_key_and_the_same_placeholders() {
        let c = catalog();
        let (en, es) = (&c.languages["en"], &c.languages["es"]);
        for (key, msg) in en {
            let theirs = es.get(key).unwrap_or_else(|| panic!("es lacks {key}"));
            let holes = |m: &Message| -> Vec<String> {
                let text = match m {
                    Message::Text(t) => t.clone(),
                    Message::Plural { other, .. } => other.clone(),
                };
                let mut names: Vec<String> = text
                    .split('{')
                    .skip(1)
                    .filter_map(|s| s.split('}').next())
                    .map(str::to_string)
                    .collect();
                names.sort();
                names
            };
            assert_eq!(holes(msg), holes(theirs), "{key}");
        }
        assert_eq!(en.len(), es.len(), "es has keys en does not");
    }

    #[test]
    fn operators_reword_and_add_languages_with_english_behind() {
        let mut c = catalog();
        c.extend("es", "[login]\nfailed = \"Nombre o clave incorrectos.\"\n")
            .unwrap();
        assert_eq!(
            c.text("es", "login.failed", None, &[]),
            "Nombre o clave incorrectos."
        );
        c.extend("de", "[login]\nsubmit = \"Anmelden\"\n").unwrap();
        assert!(c.has("de"));
        assert_eq!(c.text("de", "login.submit", None, &[]), "Anmelden");
        assert_eq!(c.text("de", "login.username", None, &[]), "Username");
        let typo = c.extend("de", "[login]\nsubmitt = \"x\"\n").unwrap_err();
        assert_eq!(typo.key, "login.submitt");
        let not_plural = c.extend("de", "[ask]\nintro = \"x\"\n").unwrap_err();
        assert_eq!(not_plural.key, "ask.intro");
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_stay_visible() {
        assert_eq!(
            fill(
                "{browser} on {system}",
                None,
                &[("browser", "Firefox"), ("system", "Linux")]
            ),
            "Firefox on Linux"
        );
        assert_eq!(fill("{n} x {who} {", Some(3), &[]), "3 x {who} {");
        assert_eq!(
            catalog().text("en", "no.such.key", None, &[]),
            "no.such.key"
        );
    }
}
