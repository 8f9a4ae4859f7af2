//! Playbooks as teams write them, generated from a seed, with the world they run in.
//!
//! The generator is written from what a team does on its drills, not from what evac
//! handles: three or four services, some sharing a hosted zone and some in their own;
//! services shifted together or one at a time; a record shifted in one, two or three
//! steps, in either form (`to:` a region, or `from:` a region); ramps of one to five
//! increments; capacity raised all at once or in halves that follow the traffic,
//! with `absorb` or an explicit `desired`, for groups together or apart; drains right
//! after a service moved or all at the end, to 0 or more; waits and approvals between
//! steps; sometimes a third region that serves part of the traffic.
//!
//! Shared by the in-memory engine test (`src/engine/shapes_tests.rs`, hundreds of
//! shapes) and the emulator test (`tests/shapes.rs`, a handful end to end).

#![allow(dead_code)]

use std::fmt::Write as _;

/// The source region: every service leaves it.
pub const SOURCE: &str = "us-east-1";
/// The target region: every service ends there.
pub const TARGET: &str = "us-west-2";
/// A third region that some records also use.
pub const THIRD: &str = "eu-central-1";

/// A generated drill: its playbook and the world it is written for.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The seed it was made from.
    pub seed: u64,
    /// The playbook's text.
    pub playbook: String,
    /// The Auto Scaling groups.
    pub groups: Vec<GroupSeed>,
    /// The weighted record sets.
    pub records: Vec<RecordSeed>,
}

/// An Auto Scaling group of the world.
#[derive(Clone, Debug)]
pub struct GroupSeed {
    /// Its region.
    pub region: &'static str,
    /// Its name.
    pub name: String,
    /// Min, desired, max.
    pub min: u32,
    /// Desired capacity.
    pub desired: u32,
    /// Max.
    pub max: u32,
}

/// A weighted record set of the world.
#[derive(Clone, Debug)]
pub struct RecordSeed {
    /// The hosted zone's name.
    pub zone: String,
    /// The record's DNS name.
    pub name: String,
    /// Its set identifier.
    pub set_identifier: String,
    /// The region it serves.
    pub region: &'static str,
    /// Its weight.
    pub weight: i64,
}

/// A small deterministic generator (SplitMix64): the same seed gives the same shape
/// on every machine, so a failing seed can be run again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// One of `items`.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

fn short(region: &str) -> &'static str {
    match region {
        SOURCE => "use1",
        TARGET => "usw2",
        _ => "euc1",
    }
}

/// One service of the world.
struct Service {
    name: String,
    zone: String,
    record: String,
    regions: Vec<&'static str>,
    source_desired: u32,
    target_desired: u32,
    /// The third region's desired capacity, where the service is there too.
    third_desired: Option<u32>,
}

impl Shape {
    /// Whether every service is in the source and target regions only.
    pub fn two_regions(&self) -> bool {
        self.groups.iter().all(|g| g.region != THIRD)
    }

    /// The playbook with no real-time hold: bakes of 0s and waits of 1s, for runs
    /// against the emulator, which has no clock to pause.
    pub fn quick(&self) -> String {
        self.playbook
            .lines()
            .map(|line| {
                let line = ["30s", "1m", "2m"].iter().fold(line.to_owned(), |l, b| {
                    l.replace(&format!("bake: {b}"), "bake: 0s")
                });
                if line.trim() == "wait: 30s" {
                    line.replace("30s", "1s")
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }
}

/// The shape of seed `seed`.
pub fn shape(seed: u64) -> Shape {
    let mut r = Rng(seed);
    let third = r.one_in(4);
    let count = 3 + r.below(2) as usize;
    let mut services = Vec::new();
    let mut groups = Vec::new();
    let mut records = Vec::new();
    for i in 1..=count {
        let name = format!("s{i}");
        let own_zone = r.one_in(3);
        let (zone, record) = if own_zone {
            (
                format!("{name}.example.org."),
                format!("{name}.{name}.example.org."),
            )
        } else {
            ("shop.example.".to_owned(), format!("{name}.shop.example."))
        };
        let mut regions = vec![SOURCE, TARGET];
        if third && r.one_in(2) {
            regions.push(THIRD);
        }
        let source_desired = 2 + r.below(7) as u32;
        let target_desired = 1 + r.below(3) as u32;
        let third_desired = (regions.len() > 2).then(|| 2 + r.below(3) as u32);
        for region in &regions {
            let (min, desired) = match *region {
                SOURCE => (r.pick(&[1, source_desired]), source_desired),
                TARGET => (1, target_desired),
                _ => (1, third_desired.unwrap_or(2)),
            };
            groups.push(GroupSeed {
                region,
                name: format!("{name}-{region}"),
                min,
                desired,
                max: 40,
            });
            let weight = match *region {
                SOURCE => r.pick(&[100, 100, 60, 200]),
                TARGET => r.pick(&[0, 0, 0, 10]),
                _ => r.pick(&[0, 40]),
            };
            records.push(RecordSeed {
                zone: zone.clone(),
                name: record.clone(),
                set_identifier: format!("{name}-{}", short(region)),
                region,
                weight,
            });
        }
        services.push(Service {
            name,
            zone,
            record,
            regions,
            source_desired,
            target_desired,
            third_desired,
        });
    }
    let playbook = playbook(&mut r, seed, &services);
    Shape {
        seed,
        playbook,
        groups,
        records,
    }
}

/// The target's share after each point of a path from 0 to 100: strictly
/// increasing, no point more than 50 above the one before.
fn path(r: &mut Rng) -> Vec<i64> {
    let mut points = Vec::new();
    let mut at = 0;
    while at < 100 {
        // Half the traffic at once only from the start: later the target's share
        // as planned can be a point or two off the path's (rounding of the `from:`
        // form), and max_increment (50) must still hold.
        // The first point lies above any target share the world starts with (at
        // most 10 of 70), so that no increment lowers the target's weight.
        let step = if at == 0 {
            r.pick(&[20, 25, 25, 30, 50, 50])
        } else {
            r.pick(&[10, 20, 25, 25, 30, 40, 45])
        }
        .min(100 - at);
        at += step;
        points.push(at);
    }
    if points.len() > 12 {
        // Long paths of small steps are fine, but keep the shape readable.
        points.drain(..points.len() - 12);
        points[0] = points[0].min(50);
    }
    points
}

/// `points` cut into 1 to 3 consecutive steps of 1 to 5 points each.
fn chunks(r: &mut Rng, points: &[i64]) -> Vec<Vec<i64>> {
    let min_steps = points.len().div_ceil(5);
    let max_steps = points.len().min(3).max(min_steps);
    let steps = min_steps + r.below((max_steps - min_steps + 1) as u64) as usize;
    let mut out = Vec::new();
    let mut rest = points;
    for left in (1..=steps).rev() {
        // Leave at least one point, and at most five, for each step still to come.
        let most = (rest.len() - (left - 1)).min(5);
        let least = rest.len().saturating_sub(5 * (left - 1)).max(1);
        let take = if left == 1 {
            rest.len()
        } else {
            least + r.below((most - least + 1) as u64) as usize
        };
        out.push(rest[..take].to_vec());
        rest = &rest[take..];
    }
    out
}

/// Writes a list: `[a, b]`.
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn playbook(r: &mut Rng, seed: u64, services: &[Service]) -> String {
    let mut text = format!(
        "version: 1\nname: shape-{seed}\ndescription: generated from seed {seed}\n\ngroups:\n"
    );
    for s in services {
        let names: Vec<String> = s
            .regions
            .iter()
            .map(|region| format!("{region}: [{}-{region}]", s.name))
            .collect();
        let _ = writeln!(text, "  {}:\n    names: {{ {} }}", s.name, names.join(", "));
    }
    text.push_str("\nrecords:\n");
    for s in services {
        let ids: Vec<String> = s
            .regions
            .iter()
            .map(|region| format!("{region}: {}-{}", s.name, short(region)))
            .collect();
        let _ = writeln!(
            text,
            "  {}:\n    zone: {}\n    name: {}\n    type: A\n    set_identifiers: {{ {} }}",
            s.name,
            s.zone,
            s.record,
            ids.join(", ")
        );
    }
    text.push_str("\nsteps:\n");
    let mut order: Vec<usize> = (0..services.len()).collect();
    r.shuffle(&mut order);
    // Services moved together: batches of one to three.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    while !order.is_empty() {
        let take = (1 + r.below(3) as usize).min(order.len());
        batches.push(order.drain(..take).collect());
    }
    let drain_at_end = r.one_in(2);
    let mut deferred: Vec<usize> = Vec::new();
    let mut n = 0;
    let mut id = |what: &str| {
        n += 1;
        format!("{what}-{n}")
    };
    for batch in &batches {
        let names: Vec<&str> = batch.iter().map(|&i| services[i].name.as_str()).collect();
        let points = path(r);
        let steps = chunks(r, &points);
        // Capacity: all before the first shift, or half before it and half before
        // the step that takes the target past half of the traffic.
        let halves = r.one_in(3);
        let together = r.one_in(2);
        let past_half = steps
            .iter()
            .position(|points| points.last().is_some_and(|p| *p > 50))
            .unwrap_or(0);
        let explicit = r.one_in(4);
        let wait = r.pick(&["", "", ", wait: in_service", ", wait: none"]);
        let scale = |text: &mut String,
                     percent: u32,
                     whole: bool,
                     id: &mut dyn FnMut(&str) -> String| {
            let groups: Vec<Vec<usize>> = if together {
                vec![batch.clone()]
            } else {
                batch.iter().map(|&i| vec![i]).collect()
            };
            for members in groups {
                let names: Vec<&str> = members.iter().map(|&i| services[i].name.as_str()).collect();
                // The whole of the traffic also takes what the third region served.
                let third: Vec<&str> = members
                    .iter()
                    .filter(|&&i| whole && services[i].third_desired.is_some())
                    .map(|&i| services[i].name.as_str())
                    .collect();
                let how = if explicit && members.len() == 1 {
                    // Written out as the team reckons it: the target's own capacity
                    // plus the share of the source's (and third region's) taken so far.
                    let s = &services[members[0]];
                    let desired = s.target_desired
                        + (s.source_desired * percent).div_ceil(100)
                        + if whole {
                            s.third_desired.unwrap_or(0)
                        } else {
                            0
                        };
                    format!("desired: {desired}")
                } else {
                    format!("absorb: {{ from: {SOURCE}, percent: {percent} }}")
                };
                let _ = writeln!(
                    text,
                    "  - id: {}\n    scale_up: {{ group: {}, region: {TARGET}, {how}{wait} }}",
                    id("scale"),
                    list(&names)
                );
                let written_out = explicit && members.len() == 1;
                if !third.is_empty() && !written_out {
                    let _ = writeln!(
                        text,
                        "  - id: {}\n    scale_up: {{ group: {}, region: {TARGET}, absorb: {{ from: {THIRD}, percent: 100 }}{wait} }}",
                        id("scale"),
                        list(&third)
                    );
                }
            }
        };
        let mut share = 0;
        for (k, points) in steps.iter().enumerate() {
            if k == 0 {
                if halves && past_half > 0 {
                    scale(&mut text, 50, false, &mut id);
                } else if !halves || past_half == 0 {
                    scale(&mut text, 100, true, &mut id);
                }
            }
            if halves && past_half > 0 && k == past_half {
                // The second half: absorb adds another 50%; an explicit desired
                // names the whole.
                scale(&mut text, if explicit { 100 } else { 50 }, true, &mut id);
            }
            let bake = r.pick(&["0s", "0s", "30s", "1m", "2m"]);
            // The `from:` form moves a share of the source's weight; where a third
            // region keeps its own, the target's share is no longer the path's, so
            // such records are written in the `to:` form (as a team would, to keep
            // each increment within max_increment).
            let third = batch.iter().any(|&i| services[i].regions.len() > 2);
            let from_form = !third && r.one_in(2);
            let (form, ramp) = if from_form {
                // The share of the source's weight (at the step's start) moved away.
                let left = 100 - share;
                let mut ramp: Vec<i64> = points
                    .iter()
                    .map(|p| ((p - share) * 100 + left / 2) / left)
                    .collect();
                ramp.dedup();
                let to = if r.one_in(2) {
                    format!(", to: {TARGET}")
                } else {
                    String::new()
                };
                (format!("from: {SOURCE}{to}"), ramp)
            } else {
                (format!("to: {TARGET}"), points.clone())
            };
            let _ = writeln!(
                text,
                "  - id: {}\n    shift_traffic: {{ record: {}, {form}, ramp: {}, bake: {bake} }}",
                id("shift"),
                list(&names),
                list(&ramp)
            );
            share = *points.last().unwrap_or(&share);
            if r.one_in(5) {
                let _ = writeln!(text, "  - id: {}\n    wait: 30s", id("hold"));
            }
        }
        if r.one_in(4) {
            let _ = writeln!(
                text,
                "  - id: {}\n    approve: \"{} moved: go on?\"",
                id("gate"),
                names.join(", ")
            );
        }
        if drain_at_end {
            deferred.extend(batch);
        } else {
            drain(r, &mut text, services, batch, &mut id);
        }
    }
    if !deferred.is_empty() {
        drain(r, &mut text, services, &deferred, &mut id);
    }
    text
}

/// Drains the source groups of `batch`: together or one at a time, to 0 or more.
fn drain(
    r: &mut Rng,
    text: &mut String,
    services: &[Service],
    batch: &[usize],
    id: &mut dyn FnMut(&str) -> String,
) {
    let to = r.pick(&[0, 0, 1]);
    let groups: Vec<Vec<usize>> = if r.one_in(2) {
        vec![batch.to_vec()]
    } else {
        batch.iter().map(|&i| vec![i]).collect()
    };
    for members in groups {
        let names: Vec<&str> = members.iter().map(|&i| services[i].name.as_str()).collect();
        let _ = writeln!(
            text,
            "  - id: {}\n    drain: {{ group: {}, region: {SOURCE}, to: {to} }}",
            id("drain"),
            list(&names)
        );
    }
}
