//! The session list as a table for a terminal.

use serde_json::Value;

fn ago(now: u64, then: Option<u64>) -> String {
    then.map_or_else(
        || "-".into(),
        |t| crate::ui::ago(std::time::Duration::from_secs(now.saturating_sub(t))),
    )
}

/// Renders `{"sessions": [...]}` from `GET /api/sessions`.
pub fn sessions(value: &Value) -> String {
    let now = crate::clock::Clock::now(&crate::clock::SystemClock).as_secs();
    let empty = Vec::new();
    let list = value["sessions"].as_array().unwrap_or(&empty);
    let mut rows = vec![[
        "ID".to_string(),
        "USER".into(),
        "DEVICE".into(),
        "IP".into(),
        "LAST SEEN".into(),
        "SIGNED IN".into(),
    ]];
    for s in list.iter().filter(|s| s["ended"].is_null()) {
        let text = |k: &str| s[k].as_str().unwrap_or("-").to_string();
        rows.push([
            text("id"),
            text("user"),
            text("device"),
            text("ip"),
            ago(now, s["last_seen"].as_u64()),
            ago(now, s["created_at"].as_u64()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} session{}\n",
        rows.len() - 1,
        if rows.len() == 2 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_up_live_sessions() {
        let v = serde_json::json!({"sessions": [
            {"id": "ab", "user": "alice", "device": "Firefox on Linux", "ip": "10.0.0.1", "last_seen": 0, "created_at": 0, "ended": null},
            {"id": "cd", "user": "bob", "device": "Safari on iOS", "ip": null, "last_seen": 0, "created_at": 0, "ended": "evicted"},
        ]});
        let t = sessions(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID  USER   DEVICE"), "{t}");
        assert!(
            lines[1].starts_with("ab  alice  Firefox on Linux  10.0.0.1"),
            "{t}"
        );
        assert_eq!(lines[2], "1 session");
    }
}
