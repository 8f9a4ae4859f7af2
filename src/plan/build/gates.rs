//! `check` steps and the playbook's stop conditions: what is watched must exist.

use super::*;
use crate::plan::MetricQuery;

impl Builder<'_> {
    pub(super) fn check(&mut self, step: &str, c: &Check) -> Built {
        let metric = match (&c.metric, &c.share) {
            (Some(m), _) => Some((MetricQuery::of(m), Vec::new())),
            (None, Some(share)) => Some((
                MetricQuery::of(&share.of),
                share.among.iter().map(MetricQuery::of).collect(),
            )),
            (None, None) => None,
        };
        if let Some((metric, among)) = metric {
            let summary = format!(
                "wait until {} for {} (timeout {})",
                crate::plan::metric_condition(&metric, &among, c.above, c.below),
                c.hold,
                c.timeout
            );
            let change = Change::MetricCheck {
                metric,
                among,
                above: c.above,
                below: c.below,
                hold_secs: c.hold.0.as_secs(),
                timeout_secs: c.timeout.0.as_secs(),
            };
            return Built::new(StepKind::Check, summary, vec![change]);
        }
        let state = serde_json::to_value(c.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let target = match (&c.alarm, &c.health_check) {
            (Some(a), _) => {
                if self
                    .observed
                    .alarms
                    .get(a.region.as_str())
                    .and_then(|m| m.get(&a.name))
                    .is_none()
                {
                    self.block(
                        Some(step),
                        Some(format!("alarm {} ({})", a.name, a.region)),
                        format!("alarm {} not found in {}", a.name, a.region),
                    );
                }
                StopRef::Alarm {
                    region: a.region.to_string(),
                    name: a.name.clone(),
                }
            }
            (None, Some(h)) => {
                if self.observed.health_checks.get(&h.id) != Some(&true) {
                    self.block(
                        Some(step),
                        Some(format!("health check {}", h.id)),
                        format!("health check {} not found", h.id),
                    );
                }
                StopRef::HealthCheck { id: h.id.clone() }
            }
            (None, None) => {
                // Validation refuses such a check; a plan still says why it cannot run.
                self.block(
                    Some(step),
                    None,
                    "a check needs an alarm or a health check to watch".to_owned(),
                );
                StopRef::HealthCheck { id: String::new() }
            }
        };
        let summary = format!(
            "wait until {target} is {state} for {} (timeout {})",
            c.hold, c.timeout
        );
        let change = Change::Check {
            target,
            state,
            hold_secs: c.hold.0.as_secs(),
            timeout_secs: c.timeout.0.as_secs(),
        };
        Built::new(StepKind::Check, summary, vec![change])
    }

    pub(super) fn check_stop_conditions(&mut self) {
        for condition in &self.playbook.stop_when {
            match condition {
                // Not watched: the region is down (the plan warns).
                StopCondition::Alarm(a) if self.observed.is_unread(a.region.as_str()) => {}
                StopCondition::Alarm(a) => {
                    let resource = Some(format!("alarm {} ({})", a.name, a.region));
                    match self.observed.alarms.get(a.region.as_str()).and_then(|m| m.get(&a.name)) {
                        None => self.block(
                            None,
                            resource,
                            format!(
                                "stop-condition alarm {} not found in {}: create it, or fix its name or region",
                                a.name, a.region
                            ),
                        ),
                        Some(state) if state == "ALARM" => self.block(
                            None,
                            resource,
                            format!(
                                "stop-condition alarm {} in {} is already in ALARM: the run would halt at once; start when it is OK",
                                a.name, a.region
                            ),
                        ),
                        Some(_) => {}
                    }
                }
                StopCondition::HealthCheck(h) => {
                    if self.observed.health_checks.get(&h.id) != Some(&true) {
                        self.block(
                            None,
                            Some(format!("health check {}", h.id)),
                            format!("stop-condition health check {} not found", h.id),
                        );
                    }
                }
            }
        }
    }
}
