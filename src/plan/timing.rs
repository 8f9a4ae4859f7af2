//! How long a run takes: the plan's duration estimate, from a model of how AWS
//! behaves in time (`notes`: launch, sync and drain times, a latency per call, and
//! the paced request rates) applied to the waves the engine will run.
//!
//! Per wave, the engine reads its targets, sends its calls paced to the API's rate,
//! and waits once for all of them; so a step costs its paced calls plus its one
//! wait, never one wait per group or per hosted zone.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::rates::{Rates, Service};

use super::model::{Change, StepKind, StepPlan};

/// What the estimate assumes of AWS.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// New instances launch and come into service.
    pub launch: Duration,
    /// A Route 53 change goes from PENDING to INSYNC.
    pub sync: Duration,
    /// Drained instances leave service.
    pub drain: Duration,
    /// New instances pass their load balancers' health checks, once InService
    /// (an ALB target group's defaults: 5 checks 30 s apart).
    pub healthy: Duration,
    /// Load balancers hold instances going out (their deregistration delay).
    pub deregister: Duration,
    /// One AWS call, there and back.
    pub latency: Duration,
    /// A zonal shift takes effect: its resource sends the zone no new traffic.
    pub shift: Duration,
    /// The paced request rates.
    pub rates: Rates,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            launch: Duration::from_secs(300),
            sync: Duration::from_secs(60),
            drain: Duration::from_secs(120),
            healthy: Duration::from_secs(150),
            deregister: Duration::from_secs(300),
            latency: Duration::from_millis(50),
            shift: Duration::from_secs(60),
            rates: Rates::default(),
        }
    }
}

impl Timing {
    /// Applies `launch=3m,sync=60s,drain=0s,healthy=1m,deregister=30s,latency=40ms,shift=1m`
    /// (any subset).
    pub fn assume(mut self, text: &str) -> Result<Self, String> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid assumption `{part}`: write KEY=DURATION"))?;
            let value = crate::playbook::HumanDuration::parse(value)?.0;
            if value > Duration::from_secs(24 * 3600) {
                return Err(format!("invalid assumption `{part}`: at most 24h"));
            }
            match key {
                "launch" => self.launch = value,
                "sync" => self.sync = value,
                "drain" => self.drain = value,
                "healthy" => self.healthy = value,
                "deregister" => self.deregister = value,
                "latency" => self.latency = value,
                "shift" => self.shift = value,
                other => {
                    return Err(format!(
                        "unknown assumption `{other}`: use launch, sync, drain, healthy, deregister, latency or shift"
                    ));
                }
            }
        }
        Ok(self)
    }

    /// Time to send `n` calls through the pacer at `service`'s rate (a burst, then
    /// one every `1 / rate`).
    fn paced(&self, n: usize, service: Service) -> f64 {
        let rate = self.rates.of(service);
        (n as f64 - crate::rates::burst(rate)).max(0.0) / rate
    }

    fn latency(&self, calls: u32) -> f64 {
        self.latency.as_secs_f64() * f64::from(calls)
    }

    /// Observing AWS before the run: one listing per hosted zone, and at the same
    /// time per region one describe, the lifecycle hooks of each of its `hooks`
    /// changed groups, its policies and its scheduled actions.
    pub fn observe(&self, zones: usize, hooks: usize) -> f64 {
        let dns = self.paced(zones + 1, Service::Route53);
        let groups = if hooks == 0 {
            0.0
        } else {
            self.paced(hooks + 3, Service::AutoScaling)
        };
        dns.max(groups) + self.latency(3)
    }

    /// The expected duration of one step, in seconds.
    pub fn step(&self, step: &StepPlan) -> f64 {
        if step.skipped.is_some() {
            return 0.0;
        }
        let groups = step
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Capacity { before, after, .. } if before != after))
            .count();
        // The load balancers the step's wait reads, each once a round.
        let balancers = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Capacity { balancers, .. } => Some(balancers),
                _ => None,
            })
            .flatten()
            .map(|v| &v.balancer)
            .collect::<BTreeSet<_>>()
            .len();
        match step.kind {
            StepKind::ScaleUp => {
                let calls = self.paced(groups + 1, Service::AutoScaling) + self.latency(2);
                if step.timeout_secs > 0 && groups > 0 {
                    // Healthy in the load balancers: the groups' instances and
                    // one read per group's load balancer, paced.
                    let balancers = if step.balancers {
                        self.healthy.as_secs_f64()
                            + self.paced(balancers, Service::Elb)
                            + self.latency(2)
                    } else {
                        0.0
                    };
                    calls + self.launch.as_secs_f64() + balancers
                } else {
                    calls
                }
            }
            StepKind::Drain => {
                // With load balancers, instances leave service at once and are held
                // for the deregistration delay.
                let out = if step.balancers {
                    self.drain.max(self.deregister).as_secs_f64()
                        + self.paced(balancers, Service::Elb)
                        + self.latency(2)
                } else {
                    self.drain.as_secs_f64()
                };
                self.paced(groups + 1, Service::AutoScaling)
                    + self.latency(3)
                    + if groups > 0 { out } else { 0.0 }
            }
            StepKind::ShiftTraffic => {
                let zones: BTreeSet<&str> = step
                    .changes
                    .iter()
                    .filter_map(|c| match c {
                        Change::Weights { zone_id, .. } => Some(zone_id.as_str()),
                        _ => None,
                    })
                    .collect();
                let (increments, bake) = step
                    .changes
                    .iter()
                    .find_map(|c| match c {
                        Change::Weights {
                            ramp, bake_secs, ..
                        } => Some((ramp.len(), *bake_secs)),
                        _ => None,
                    })
                    .unwrap_or((0, 0));
                // Per increment: the capacity check, every zone read and changed, one
                // sync for all, GetChange, the bake.
                increments as f64
                    * (self.latency(4)
                        + self.paced(2 * zones.len(), Service::Route53)
                        + self.sync.as_secs_f64()
                        + bake as f64)
            }
            StepKind::EvacuateZone => {
                let batches = step
                    .changes
                    .iter()
                    .filter_map(|c| match c {
                        Change::ZoneEvacuation {
                            instances_to_replace,
                            batch_size,
                            ..
                        } => Some(instances_to_replace.div_ceil((*batch_size).max(1))),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                let shifts = step
                    .changes
                    .iter()
                    .filter(|c| matches!(c, Change::ZonalShift { .. }))
                    .count();
                // Traffic first: every shift started at once, then one wait for all.
                let traffic = if shifts > 0 {
                    self.latency(2) + self.shift.as_secs_f64()
                } else {
                    0.0
                };
                traffic + self.latency(4) + f64::from(batches) * self.launch.as_secs_f64()
            }
            StepKind::Wait => step
                .changes
                .iter()
                .map(|c| match c {
                    Change::Wait { secs } => *secs as f64,
                    _ => 0.0,
                })
                .sum(),
            StepKind::Approve => 0.0,
            StepKind::Check => step
                .changes
                .iter()
                .map(|c| match c {
                    Change::Check { hold_secs, .. } | Change::MetricCheck { hold_secs, .. } => {
                        *hold_secs as f64 + self.latency(1)
                    }
                    _ => 0.0,
                })
                .sum(),
        }
    }

    /// What the estimate assumes, for people; `shifts`: the plan starts zonal
    /// shifts.
    pub fn assumptions(&self, shifts: bool) -> Vec<String> {
        let show = |d: Duration| crate::playbook::HumanDuration(d).to_string();
        let mut out = vec![
            format!(
                "instances launch and come InService in {}",
                show(self.launch)
            ),
            format!("a Route 53 change is in sync within {}", show(self.sync)),
            format!("a drain completes in {}", show(self.drain)),
            format!(
                "load balancers pass new instances in {} and hold leaving ones {}",
                show(self.healthy),
                show(self.deregister)
            ),
            format!(
                "each AWS call takes {}; Route 53 is paced at {}/s, Auto Scaling at {}/s",
                show(self.latency),
                self.rates.of(Service::Route53),
                self.rates.of(Service::AutoScaling)
            ),
            "approvals take no time".to_owned(),
        ];
        if shifts {
            out.insert(
                2,
                format!("a zonal shift takes effect in {}", show(self.shift)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SetWeights;

    fn shift(zones: usize, ramp: Vec<i64>, bake_secs: u64) -> StepPlan {
        StepPlan {
            skipped: None,
            id: "shift".into(),
            kind: StepKind::ShiftTraffic,
            summary: String::new(),
            changes: (0..zones)
                .map(|z| Change::Weights {
                    record: format!("r{z}"),
                    name: format!("r{z}.example.com."),
                    record_type: "A".into(),
                    zone_id: format!("Z{z}"),
                    ramp: ramp.clone(),
                    sets: vec![SetWeights {
                        health_check: None,
                        failing: false,
                        set_identifier: "west".into(),
                        region: None,
                        before: 0,
                        after: ramp.clone(),
                    }],
                    bake_secs,
                    ttl_secs: 60,
                    if_unhealthy: None,
                })
                .collect(),
            estimate_secs: 0,
            timeout_secs: 300,
            balancers: false,
        }
    }

    #[test]
    fn a_ramp_costs_one_sync_per_increment_whatever_the_number_of_zones() {
        let timing = Timing::default()
            .assume("sync=60s,latency=0s")
            .expect("valid");
        let one = timing.step(&shift(1, vec![50, 100], 120));
        let five = timing.step(&shift(5, vec![50, 100], 120));
        assert_eq!(one, 2.0 * (60.0 + 120.0));
        // Five zones add only the paced calls: 10 a increment at 5/s after a burst of 4.
        assert!((five - one - 2.0 * 1.2).abs() < 1e-9, "{five} vs {one}");
    }

    #[test]
    fn assumptions_are_parsed_and_bounded() {
        let timing = Timing::default()
            .assume("launch=3s, sync=2s,drain=0s,latency=40ms")
            .expect("valid");
        assert_eq!(timing.launch, Duration::from_secs(3));
        assert_eq!(timing.latency, Duration::from_millis(40));
        assert!(Timing::default().assume("boot=3s").is_err());
        assert!(Timing::default().assume("launch").is_err());
        assert!(Timing::default().assume("launch=3 parsecs").is_err());
        assert!(Timing::default().assume("sync=400d").is_err());
    }
}
