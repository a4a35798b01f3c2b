//! Configuration errors that name the file, the line and the key, and say
//! what was expected. Used for the main config and the users file alike.

use std::fmt;
use std::path::{Path, PathBuf};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits in a TOML document, e.g. `route[1].upstream`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(&self, k: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Key(k.to_string()));
        next
    }

    pub fn index(&self, i: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Seg::Index(i));
        next
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one pass over a file (or two: config and users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, e) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors for one source file, locating each key path in the text.
pub struct ErrorSink<'a> {
    file: &'a Path,
    doc: Option<toml_edit::Document<&'a str>>,
    pub errors: Vec<ConfigError>,
}

impl<'a> ErrorSink<'a> {
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        ErrorSink {
            file,
            doc: toml_edit::Document::parse(source).ok(),
            errors: Vec::new(),
        }
    }

    pub fn push(&mut self, path: &KeyPath, message: impl Into<String>) {
        let line = self.doc.as_ref().and_then(|doc| line_of(doc, path));
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// `file:line` of a key, for a message that points at a second place.
    pub fn locate(&self, path: &KeyPath) -> String {
        match self.doc.as_ref().and_then(|doc| line_of(doc, path)) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The line of the deepest part of `path` present in the document, so a
/// missing key is reported at the table that should hold it.
fn line_of(doc: &toml_edit::Document<&str>, path: &KeyPath) -> Option<usize> {
    let raw = doc.raw();
    let mut item = doc.as_item();
    let mut offset = None;
    for seg in path.segments() {
        let next = match seg {
            Seg::Key(k) => item.get(k.as_str()),
            Seg::Index(i) => item.get(*i),
        };
        match next {
            Some(found) => {
                item = found;
                if let Some(span) = found.span() {
                    offset = Some(span.start);
                }
            }
            None => break,
        }
    }
    offset.map(|o| line_at(raw, o))
}

/// 1-based line number of a byte offset.
pub fn line_at(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_like_toml() {
        let p = KeyPath::root().key("route").index(1).key("upstream");
        assert_eq!(p.to_string(), "route[1].upstream");
        assert_eq!(KeyPath::root().key("a.b").key("c").to_string(), "\"a.b\".c");
    }

    #[test]
    fn errors_are_located_at_their_key() {
        let src = "[server]\nlisten = [\"x\"]\n\n[[route]]\npath_prefix = \"/\"\n\n[[route]]\nupstream = \"nowhere\"\n";
        let file = Path::new("g.toml");
        let mut sink = ErrorSink::new(file, src);
        sink.push(
            &KeyPath::root().key("route").index(1).key("upstream"),
            "bad",
        );
        sink.push(&KeyPath::root().key("server").key("listen").index(0), "bad");
        sink.push(&KeyPath::root().key("server").key("missing"), "bad");
        let lines: Vec<_> = sink.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(8), Some(2), Some(1)]);
        assert_eq!(
            sink.errors[0].to_string(),
            "g.toml:8: route[1].upstream: bad"
        );
    }
}
