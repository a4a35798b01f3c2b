//! Picks the language of a page: the browser's `Accept-Language` (with its
//! q-values) matched against the languages the catalog has, `ui.language`
//! when nothing matches. Pure; any header, however malformed, yields a
//! language and never a panic.

/// The best of `available` for `accept` (an `Accept-Language` value), or
/// `fallback`. `es-MX` matches `es`; `pt` matches `pt-br` when that is all
/// there is; `*` and `q=0` are honoured.
pub fn negotiate<'a, S: AsRef<str>>(
    accept: Option<&str>,
    available: &'a [S],
    fallback: &'a str,
) -> &'a str {
    let Some(accept) = accept else {
        return fallback;
    };
    let mut wanted: Vec<(u16, usize, String)> = Vec::new();
    // A header longer than this is not a browser's; the first entries are
    // what matters.
    for (i, part) in accept.split(',').take(32).enumerate() {
        let mut bits = part.split(';');
        let tag = bits.next().unwrap_or("").trim().to_ascii_lowercase();
        if tag.is_empty() || tag.len() > 35 {
            continue;
        }
        let mut q = 1000;
        for param in bits {
            if let Some(v) = param.trim().strip_prefix("q=") {
                q = parse_q(v.trim()).unwrap_or(0);
            }
        }
        if q > 0 {
            wanted.push((q, i, tag));
        }
    }
    // Highest q first; equal q keeps the header's order.
    wanted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in &wanted {
        if tag == "*" {
            return fallback;
        }
        if let Some(found) = best_match(tag, available) {
            return found;
        }
    }
    fallback
}

fn best_match<'a, S: AsRef<str>>(tag: &str, available: &'a [S]) -> Option<&'a str> {
    let primary = tag.split('-').next().unwrap_or(tag);
    let primary_of = |a: &str| a.split('-').next().map(str::to_ascii_lowercase);
    let names = || available.iter().map(AsRef::as_ref);
    names()
        .find(|a| a.eq_ignore_ascii_case(tag))
        .or_else(|| names().find(|a| a.eq_ignore_ascii_case(primary)))
        .or_else(|| names().find(|a| primary_of(a).as_deref() == Some(primary)))
}

/// A q-value in thousandths: "1", "0.8", "0.125"; anything else is none.
fn parse_q(v: &str) -> Option<u16> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        let place = [100, 10, 1].get(i).copied().unwrap_or(0);
        thousandths += u16::from(b - b'0') * place;
    }
    let q = whole * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVAILABLE: [&str; 3] = ["en", "es", "pt-br"];

    fn pick(header: &str) -> String {
        negotiate(Some(header), &AVAILABLE, "en").to_string()
    }

    #[test]
    fn q_values_decide() {
        assert_eq!(pick("es-ES,es;q=0.9,en;q=0.8"), "es");
        assert_eq!(pick("en;q=0.5, es;q=0.9"), "es");
        assert_eq!(pick("fr-FR, fr;q=0.9, es;q=0.4, en;q=0.3"), "es");
        assert_eq!(pick("es;q=0, en"), "en");
        assert_eq!(pick("de, *;q=0.1"), "en");
    }

    #[test]
    fn regions_and_primaries_match_each_other() {
        assert_eq!(pick("es-MX"), "es");
        assert_eq!(pick("pt"), "pt-br");
        assert_eq!(pick("PT-BR"), "pt-br");
    }

    #[test]
    fn nothing_usable_falls_back() {
        assert_eq!(negotiate(None, &AVAILABLE, "es"), "es");
        assert_eq!(negotiate(Some("de, fr"), &AVAILABLE, "es"), "es");
        assert_eq!(pick(""), "en");
        assert_eq!(pick(";;;,,q=2,es;q=abc"), "en");
        assert_eq!(pick("es;q=1.5"), "en");
        assert_eq!(pick(&"x,".repeat(10_000)), "en");
    }

    #[test]
    fn q_parsing() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0.8"), Some(800));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0.1234"), None);
    }
}
