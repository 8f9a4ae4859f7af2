//! How long an AWS call may take: the one place the time limits are set, read by
//! the AWS clients (S3 state included) and by a taker waiting out a holder's call.

use std::time::Duration;

/// The longest one attempt of an AWS call may take before it is given up and tried
/// again (`EVAC_ATTEMPT_TIMEOUT` changes it).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest an AWS call may take with its retries (`EVAC_CALL_TIMEOUT` changes
/// it): a request AWS never answers ends, and so does the run's wait on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a region may leave a request unanswered, answering nothing else,
/// before its reads are given up on and it is named as not answering
/// (`EVAC_REGION_BUDGET` changes it).
pub const REGION_BUDGET: Duration = Duration::from_secs(10);

/// The region budget in force: `EVAC_REGION_BUDGET`, else [`REGION_BUDGET`].
pub fn region_budget() -> Duration {
    from_env("EVAC_REGION_BUDGET", REGION_BUDGET)
}

/// Past this age, a region's last known state is said to be old in the plan
/// (`EVAC_KNOWN_MAX_AGE` changes it).
pub const KNOWN_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The age limit in force: `EVAC_KNOWN_MAX_AGE`, else [`KNOWN_MAX_AGE`].
pub fn known_max_age() -> Duration {
    // Days are allowed here (`7d`), beyond the playbook's 24h.
    std::env::var("EVAC_KNOWN_MAX_AGE")
        .ok()
        .and_then(|text| text.trim().parse::<jiff::Span>().ok())
        .and_then(|span| {
            span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .ok()
        })
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or_else(|| from_env("EVAC_KNOWN_MAX_AGE", KNOWN_MAX_AGE))
}

/// The attempt timeout in force: `EVAC_ATTEMPT_TIMEOUT`, else [`ATTEMPT_TIMEOUT`].
pub fn attempt_timeout() -> Duration {
    from_env("EVAC_ATTEMPT_TIMEOUT", ATTEMPT_TIMEOUT)
}

/// The call timeout in force: `EVAC_CALL_TIMEOUT`, else [`CALL_TIMEOUT`].
pub fn call_timeout() -> Duration {
    from_env("EVAC_CALL_TIMEOUT", CALL_TIMEOUT)
}

/// A duration (`10s`, `2m`) from `var`; `default` when unset, and when it does not
/// parse or is zero, saying so once per process.
fn from_env(var: &str, default: Duration) -> Duration {
    match std::env::var(var) {
        Ok(text) if !text.trim().is_empty() => match crate::playbook::HumanDuration::parse(&text) {
            Ok(d) if !d.0.is_zero() => d.0,
            _ => {
                static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
                let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
                if !said.iter().any(|v| v == var) {
                    said.push(var.to_owned());
                    crate::say!(
                        "warning: {var}={text} is not a duration like `30s`: using {}s",
                        default.as_secs()
                    );
                }
                default
            }
        },
        _ => default,
    }
}
