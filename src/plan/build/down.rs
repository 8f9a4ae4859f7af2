//! Regions not read live: declared down (`--region-down`), or silent past their
//! budget. They are planned from their last known state; the steps that would
//! change something there, or wait on something there, are skipped; the plan says
//! how old what it knows is, and what depends on the region being left.

use crate::playbook::{Action, ShiftTo, StopCondition};
use crate::state::UnreadWhy;

use super::Builder;

impl Builder<'_> {
    /// What a region not read live is, said after `which`: `is down` (the
    /// operator said so), `does not answer` (found so).
    pub(super) fn unread_said(&self, region: &str) -> &'static str {
        match self.observed.unread.get(region).map(|u| &u.why) {
            Some(UnreadWhy::Silent { .. }) => "does not answer",
            _ => "is down",
        }
    }

    /// Why the step `action` is skipped: it changes something in a region not read
    /// live, or waits on something there. `None`: it runs.
    pub(super) fn skipped_because(&self, action: &Action) -> Option<String> {
        let down = |region: &str| {
            self.observed
                .is_unread(region)
                .then(|| format!("{region} is down"))
        };
        match action {
            Action::ScaleUp(s) => down(s.region.as_str()),
            Action::Drain(d) => down(d.region.as_str()),
            Action::EvacuateZone(z) => down(z.region.as_str()),
            Action::Check(c) => {
                let regions = c
                    .alarm
                    .iter()
                    .map(|a| &a.region)
                    .chain(c.metric.iter().map(|m| &m.region))
                    .chain(
                        c.share
                            .iter()
                            .flat_map(|s| std::iter::once(&s.of).chain(&s.among))
                            .map(|m| &m.region),
                    );
                regions
                    .into_iter()
                    .find(|r| self.observed.is_unread(r.as_str()))
                    .map(|r| format!("{r} is down: what it checks cannot be read"))
            }
            Action::ShiftTraffic(_) | Action::Wait(_) | Action::Approve(_) => None,
        }
    }

    /// The findings of the regions not read live, the age of what is known of them,
    /// the stop conditions that cannot be watched, and what depends on us-east-1.
    pub(super) fn check_unread(&mut self, now: jiff::Timestamp) {
        let max_age = crate::limits::known_max_age();
        for (region, unread) in &self.observed.unread {
            let age = unread
                .read_at
                .as_deref()
                .and_then(|at| crate::plan::known::age(at, now).map(|(d, said)| (at, d, said)));
            let known = match &age {
                Some((at, _, said)) => format!("its last known state, read {said} ago ({at})"),
                None => {
                    "no last known state: the state dir holds no record of what is needed there"
                        .to_owned()
                }
            };
            match &unread.why {
                UnreadWhy::Silent { said } => {
                    let way = if age.is_some() {
                        format!(
                            "if it is down, plan and run with `--region-down {region}`: nothing is then sent to it, it is planned from {known}, and the steps marked skipped are left out"
                        )
                    } else {
                        format!(
                            "`--region-down {region}` would plan it from its last known state, and there is {known} (`evac plan` records what it reads of each region while it answers)"
                        )
                    };
                    self.block(
                        None,
                        Some(format!("region {region}")),
                        format!("{said}; {way}"),
                    );
                }
                UnreadWhy::Down => {
                    self.warn(
                        None,
                        Some(format!("region {region}")),
                        format!(
                            "{region} is down (--region-down): nothing is read from it or sent to it; planned from {known}"
                        ),
                    );
                }
            }
            if let Some((at, age, said)) = age
                && age > max_age
            {
                self.warn(
                    None,
                    Some(format!("region {region}")),
                    format!(
                        "the last known state of {region} was read {said} ago ({at}), more than {}d: its groups may have changed since, and what this plan takes from them (absorb's capacity) with them",
                        max_age.as_secs() / 86400
                    ),
                );
            }
        }
        for condition in &self.playbook.stop_when {
            if let StopCondition::Alarm(a) = condition
                && self.observed.is_unread(a.region.as_str())
            {
                self.warn(
                    None,
                    Some(format!("alarm {} ({})", a.name, a.region)),
                    format!(
                        "stop-condition alarm {} cannot be read: {} is down, so the run does not watch it",
                        a.name, a.region
                    ),
                );
            }
        }
        for step in &self.playbook.steps {
            if let Action::ShiftTraffic(s) = &step.action {
                let targets: Vec<&str> = match &s.to {
                    Some(ShiftTo::Region(r)) => vec![r.as_str()],
                    Some(ShiftTo::Split(split)) => split.keys().map(|r| r.as_str()).collect(),
                    None => Vec::new(),
                };
                for target in targets.into_iter().filter(|r| self.observed.is_unread(r)) {
                    self.block(
                        Some(step.id.as_str()),
                        Some(format!("region {target}")),
                        format!(
                            "step `{}` moves traffic to {target}, which is down: move it to a region that answers",
                            step.id
                        ),
                    );
                }
            }
        }
        self.check_route53_home();
    }

    /// Route 53 changes records through its control plane in us-east-1: a drill
    /// that leaves us-east-1 and moves traffic depends on the region it leaves.
    fn check_route53_home(&mut self) {
        let home = crate::route53::REGION;
        let shifts = self
            .playbook
            .steps
            .iter()
            .find(|s| matches!(s.action, Action::ShiftTraffic(_)));
        let leaves_home = self.observed.is_unread(home)
            || self.playbook.steps.iter().any(|s| match &s.action {
                Action::Drain(d) => d.region.as_str() == home,
                Action::ShiftTraffic(t) => t.from.as_ref().is_some_and(|r| r.as_str() == home),
                Action::ScaleUp(u) => u.absorb.as_ref().is_some_and(|a| a.from.as_str() == home),
                _ => false,
            });
        if let Some(step) = shifts
            && leaves_home
        {
            self.warn(
                Some(step.id.as_str()),
                Some("Route 53".to_owned()),
                format!(
                    "this drill leaves {home}, where Route 53's control plane is: its traffic changes (ChangeResourceRecordSets, GetChange) depend on the region it leaves, and may fail if {home} is impaired (DNS answers do not). ARC routing controls or Global Accelerator traffic dials would not depend on it; evac does not drive them yet"
                ),
            );
        }
    }
}
