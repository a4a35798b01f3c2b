//! Colours an operator sets without writing a template (`ui.accent_color`,
//! `ui.focus_color_dark`), checked for contrast (WCAG 2 relative luminance)
//! and turned into a few CSS custom properties appended to the built-in
//! stylesheet. Pure; never accepts a value that could break out of CSS.

use std::fmt;

/// An sRGB colour written `#rgb` or `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub [u8; 3]);

/// Chromium's dark-mode canvas, the darkest page our dark rings sit on.
pub const DARK_CANVAS: Color = Color([0x12, 0x12, 0x12]);
pub const WHITE: Color = Color([0xff, 0xff, 0xff]);
/// The built-in button and light-mode ring colour.
pub const ACCENT: Color = Color([0x24, 0x58, 0xc6]);
/// The built-in dark-mode focus ring.
pub const RING_DARK: Color = Color([0x8a, 0xb4, 0xf8]);

/// A focus ring must stand out this much from what is around it
/// (WCAG 1.4.11); text on a button this much (1.4.3).
pub const MIN_RING_CONTRAST: f64 = 3.0;
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

impl Color {
    pub fn parse(text: &str) -> Option<Color> {
        let hex = text.trim().strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| -> Option<u8> {
            let b = *hex.as_bytes().get(i)?;
            (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
        };
        match hex.len() {
            3 => Some(Color([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])),
            6 => Some(Color([
                digit(0)? * 16 + digit(1)?,
                digit(2)? * 16 + digit(3)?,
                digit(4)? * 16 + digit(5)?,
            ])),
            _ => None,
        }
    }

    /// WCAG 2 relative luminance, 0 (black) to 1 (white).
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let s = f64::from(c) / 255.0;
            if s <= 0.040_45 {
                s / 12.92
            } else {
                ((s + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// The WCAG contrast ratio, 1 to 21.
    pub fn contrast(self, other: Color) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

/// The operator's colours; `None` keeps the built-in one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Theme {
    pub accent: Option<Color>,
    pub ring_dark: Option<Color>,
}

impl Theme {
    /// Why `accent` cannot be used: white button text on it, and the
    /// light-mode ring on a white page, must be readable.
    pub fn check_accent(accent: Color) -> Result<(), String> {
        let c = accent.contrast(WHITE);
        if c < MIN_TEXT_CONTRAST {
            return Err(format!(
                "white button text on {accent} has a contrast of {c:.1}:1; at least {MIN_TEXT_CONTRAST}:1 is needed (pick a darker colour)"
            ));
        }
        Ok(())
    }

    /// Why `ring` cannot be the dark-mode focus ring.
    pub fn check_ring_dark(ring: Color) -> Result<(), String> {
        let c = ring.contrast(DARK_CANVAS);
        if c < MIN_RING_CONTRAST {
            return Err(format!(
                "a focus ring of {ring} on a dark page ({DARK_CANVAS}) has a contrast of {c:.1}:1; at least {MIN_RING_CONTRAST}:1 is needed (pick a lighter colour)"
            ));
        }
        Ok(())
    }

    /// CSS appended to the built-in stylesheet; empty without colours.
    pub fn css(&self) -> String {
        let mut out = String::new();
        if let Some(a) = self.accent {
            out.push_str(&format!(":root {{ --accent: {a}; --ring: {a}; }}\n"));
        }
        if let Some(r) = self.ring_dark {
            out.push_str(&format!(
                "@media (prefers-color-scheme: dark) {{ :root {{ --ring: {r}; }} }}\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_colours_only() {
        assert_eq!(Color::parse("#2458c6"), Some(ACCENT));
        assert_eq!(Color::parse("#fff"), Some(WHITE));
        assert_eq!(Color::parse("#FFFFFF"), Some(WHITE));
        for bad in ["2458c6", "#12345", "#ggg", "red", "#fff;}body{", "", "#"] {
            assert_eq!(Color::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn contrast_matches_known_values() {
        assert!((WHITE.contrast(Color([0, 0, 0])) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
    }

    /// The numbers the stylesheet's comment states.
    #[test]
    fn built_in_focus_ring_meets_three_to_one_in_both_modes() {
        let light = ACCENT.contrast(WHITE);
        let dark_with_accent = ACCENT.contrast(DARK_CANVAS);
        let dark = RING_DARK.contrast(DARK_CANVAS);
        assert!((light - 6.4).abs() < 0.05, "{light}");
        assert!(dark_with_accent < MIN_RING_CONTRAST, "{dark_with_accent}");
        assert!((dark_with_accent - 2.9).abs() < 0.05, "{dark_with_accent}");
        assert!((dark - 8.9).abs() < 0.05, "{dark}");
        // Firefox's dark canvas is lighter; the ring still clears it.
        assert!(RING_DARK.contrast(Color([0x1c, 0x1b, 0x22])) >= MIN_RING_CONTRAST);
        let css = include_str!("assets/gatehouse.css");
        assert!(css.contains(&format!("--ring: {RING_DARK}")));
        assert!(css.contains(&format!("--accent: {ACCENT}")));
    }

    #[test]
    fn checks_and_css() {
        assert!(Theme::check_accent(ACCENT).is_ok());
        let e = Theme::check_accent(Color::parse("#ffcc00").unwrap()).unwrap_err();
        assert!(e.contains("1.") && e.contains("4.5:1"), "{e}");
        assert!(Theme::check_ring_dark(RING_DARK).is_ok());
        assert!(Theme::check_ring_dark(ACCENT).is_err());
        let t = Theme {
            accent: Some(Color([0, 0x66, 0x33])),
            ring_dark: None,
        };
        assert_eq!(t.css(), ":root { --accent: #006633; --ring: #006633; }\n");
        assert_eq!(Theme::default().css(), "");
    }
}
