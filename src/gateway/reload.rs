//! What a reload changed, in one readable line for the log. Pure.

use super::state::Snapshot;

/// Human summary of the differences; empty when nothing changed.
pub fn describe_changes(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let (a, b) = (&old.settings, &new.settings);
    let mut out = Vec::new();
    if a.routes.len() != b.routes.len()
        || a.routes.iter().zip(&b.routes).any(|(x, y)| {
            (&x.host, &x.path_prefix, &x.upstreams, x.access, &x.groups)
                != (&y.host, &y.path_prefix, &y.upstreams, y.access, &y.groups)
                || x.upstream_options != y.upstream_options
        })
    {
        out.push(format!("routes ({} → {})", a.routes.len(), b.routes.len()));
    }
    let (sa, sb) = (&a.session, &b.session);
    changed_durations(
        &mut out,
        "session",
        [
            ("idle_timeout", sa.idle_timeout, sb.idle_timeout),
            ("absolute_timeout", sa.absolute_timeout, sb.absolute_timeout),
        ],
    );
    if sa.max_devices != sb.max_devices || sa.on_device_limit != sb.on_device_limit {
        out.push(format!(
            "device limit ({} {} → {} {})",
            sa.max_devices,
            sa.on_device_limit.as_str(),
            sb.max_devices,
            sb.on_device_limit.as_str()
        ));
    }
    if a.ui.pages.fingerprint != b.ui.pages.fingerprint {
        out.push("ui pages (templates, messages, colours or logo)".into());
    }
    if sa.groups != sb.groups {
        out.push("session.groups".into());
    }
    let schedules = |s: &crate::config::Settings| -> Vec<(String, String, Vec<String>)> {
        s.schedules
            .iter()
            .map(|x| {
                (
                    x.cron_text.clone(),
                    x.timezone_name.clone(),
                    x.exempt_groups.clone(),
                )
            })
            .collect()
    };
    if schedules(a) != schedules(b) {
        out.push(format!(
            "invalidation.schedule ({} → {})",
            a.schedules.len(),
            b.schedules.len()
        ));
    }
    let (la, lb) = (&a.login, &b.login);
    changed_durations(
        &mut out,
        "login",
        [
            ("failure_delay", la.failure_delay, lb.failure_delay),
            ("failure_window", la.failure_window, lb.failure_window),
            ("ban_time", la.ban_time, lb.ban_time),
        ],
    );
    for (name, x, y) in [
        (
            "max_failures",
            la.max_failures.to_string(),
            lb.max_failures.to_string(),
        ),
        (
            "min_password_length",
            la.min_password_length.to_string(),
            lb.min_password_length.to_string(),
        ),
    ] {
        if x != y {
            out.push(format!("login.{name} ({x} → {y})"));
        }
    }
    if a.server.logout_paths != b.server.logout_paths
        || a.server.trusted_proxies != b.server.trusted_proxies
    {
        out.push("server.logout_paths/trusted_proxies".into());
    }
    if a.server.admin_hosts != b.server.admin_hosts {
        out.push("server.admin_hosts".into());
    }
    if a.server.client_limits != b.server.client_limits {
        out.push("server.request_header_timeout/max_request_header_bytes/form_body_timeout".into());
    }
    crate::tls::describe_changes(a.server.tls.as_ref(), b.server.tls.as_ref(), &mut out);
    let (ua, ub) = (&old.users, &new.users);
    let added = ub.iter().filter(|u| ua.get(&u.username).is_none()).count();
    let removed = ua.iter().filter(|u| ub.get(&u.username).is_none()).count();
    let changed = ub
        .iter()
        .filter(|u| ua.get(&u.username).is_some_and(|o| **o != ***u))
        .count();
    if added + removed + changed > 0 {
        out.push(format!("users (+{added} -{removed} ~{changed})"));
    }
    out
}

/// Settings that only a restart can change; returns the ones that differ.
pub fn needs_restart(old: &Snapshot, new: &Snapshot) -> Vec<&'static str> {
    let (a, b) = (&old.settings, &new.settings);
    let mut out = Vec::new();
    if a.server.listen != b.server.listen {
        out.push("server.listen");
    }
    if a.users_sql != b.users_sql {
        out.push("users.sql");
    }
    if a.server.threads != b.server.threads {
        out.push("server.threads");
    }
    if a.session.store != b.session.store {
        out.push("session.store");
    }
    if a.server.secret_file != b.server.secret_file {
        out.push("server.secret_file");
    }
    if a.server.upgrade_sock != b.server.upgrade_sock || a.server.pid_file != b.server.pid_file {
        out.push("server.upgrade_sock/pid_file");
    }
    if a.server.admin_listen != b.server.admin_listen {
        out.push("server.admin_listen");
    }
    if a.server.admin_token != b.server.admin_token {
        out.push("server.admin_token_file");
    }
    if a.server.admin_allow_unauthenticated != b.server.admin_allow_unauthenticated {
        out.push("server.admin_allow_unauthenticated");
    }
    if a.session.invalidate_on_restart != b.session.invalidate_on_restart
        || a.server.state_dir != b.server.state_dir
    {
        out.push("session.invalidate_on_restart/server.state_dir");
    }
    if a.server.grace_period != b.server.grace_period {
        out.push("server.grace_period");
    }
    if a.login.max_concurrent_hashes != b.login.max_concurrent_hashes {
        out.push("login.max_concurrent_hashes");
    }
    out.extend(crate::tls::needs_restart(
        a.server.tls.as_ref(),
        b.server.tls.as_ref(),
    ));
    out
}
/// `section.key (old → new)` for each duration key whose value changed.
fn changed_durations<const N: usize>(
    out: &mut Vec<String>,
    section: &str,
    keys: [(&str, std::time::Duration, std::time::Duration); N],
) {
    for (name, x, y) in keys {
        if x != y {
            out.push(format!(
                "{section}.{name} ({} → {})",
                humantime::format_duration(x),
                humantime::format_duration(y)
            ));
        }
    }
}
