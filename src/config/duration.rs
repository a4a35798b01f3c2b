//! Human durations in config files: "30m", "24h", "1h 30m", "2s".

use std::time::Duration;

/// Parses a human duration; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a duration like \"30m\", \"24h\" or \"90s\"";
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err(format!("{expected}, greater than zero")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!("{expected}, found {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_forms() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn refuses_nonsense_and_zero() {
        assert!(parse_duration("30 minutes please").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("0s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }
}
