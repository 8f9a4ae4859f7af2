//! ARC zonal shifts as a zone step starts them: how long they last, what they say.

/// How long a shift outlasts the drill's estimate: the margin before it expires by
/// itself, a dead man's switch if the drill's process dies.
pub const MARGIN_SECS: u64 = 30 * 60;

/// The longest a zonal shift may last: three days.
pub const MAX_MINUTES: u32 = 72 * 60;

/// The shortest a shift is started or extended for.
pub const MIN_MINUTES: u32 = 5;

/// Minutes a shift lasts to cover `secs` more of the drill, with the margin.
pub fn minutes_for(secs: u64) -> u32 {
    let minutes = secs.saturating_add(MARGIN_SECS).div_ceil(60);
    u32::try_from(minutes)
        .unwrap_or(MAX_MINUTES)
        .clamp(MIN_MINUTES, MAX_MINUTES)
}

/// ARC's `expiresIn` for `minutes` (`90m`).
pub fn expires_in(minutes: u32) -> String {
    format!("{}m", minutes.clamp(1, MAX_MINUTES))
}

/// The comment a shift carries: the run and step that started it, so that a
/// teammate sees whose it is and evac finds its own. ARC allows 128 characters.
pub fn comment(run_id: &str, step: &str) -> String {
    let full = format!("evac run {run_id} step {step}");
    full.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_outlasts_the_estimate_by_the_margin_within_arcs_bounds() {
        assert_eq!(minutes_for(0), 30);
        assert_eq!(minutes_for(61), 32);
        assert_eq!(minutes_for(10 * 24 * 3600), MAX_MINUTES);
        assert_eq!(expires_in(90), "90m");
    }

    #[test]
    fn a_comment_names_its_run_and_step_within_128_characters() {
        let c = comment("drill-20261204-1", "leave-az");
        assert_eq!(c, "evac run drill-20261204-1 step leave-az");
        assert!(comment("r", &"s".repeat(300)).chars().count() <= 128);
    }
}
