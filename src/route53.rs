//! Route 53's rules evac relies on: its limits on one ChangeResourceRecordSets
//! request, and the cutting of a hosted zone's changes into as few requests as they
//! allow; and which weighted sets Route 53 answers with when health checks fail
//! ([`answering`]).
//!
//! One request holds at most 1,000 ResourceRecord elements and 32,000 characters of
//! values, and an UPSERT counts each twice (AWS: "Quotas on ChangeResourceRecordSets
//! requests"); past either limit the whole request is refused with
//! `InvalidChangeBatch`. The engine sends each increment of a hosted zone in the
//! batches [`batches`] makes, and the plan counts them the same way.

use crate::journal::RecordSetDef;

/// Route 53 is a global service whose control plane is in us-east-1.
pub const REGION: &str = "us-east-1";

/// One weighted set's change: the set as it must be now, and as it becomes (the same
/// set, another weight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightChange {
    /// As it must be now.
    pub from: RecordSetDef,
    /// As it becomes.
    pub to: RecordSetDef,
}

/// The most ResourceRecord elements one request may hold.
pub const MAX_ELEMENTS: u64 = 1000;
/// The most characters all the Value elements of one request may hold.
pub const MAX_VALUE_CHARS: u64 = 32_000;

/// What a change costs against the limits of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// ResourceRecord elements.
    pub elements: u64,
    /// Characters of values.
    pub chars: u64,
}

impl Cost {
    /// An UPSERT of a set of `values` values of `chars` characters in all: both
    /// counted twice. An alias (no value) is counted as one element.
    pub fn upsert(values: usize, chars: usize) -> Self {
        Cost {
            elements: 2 * values.max(1) as u64,
            chars: 2 * chars as u64,
        }
    }

    /// An UPSERT of `set`.
    pub fn of(set: &RecordSetDef) -> Self {
        Self::upsert(set.values.len(), set.values.iter().map(String::len).sum())
    }

    fn plus(self, other: Cost) -> Cost {
        Cost {
            elements: self.elements + other.elements,
            chars: self.chars + other.chars,
        }
    }

    /// Whether one request can hold it.
    pub fn fits(self) -> bool {
        self.elements <= MAX_ELEMENTS && self.chars <= MAX_VALUE_CHARS
    }
}

/// Cuts `items` (each: the record it belongs to, its cost, itself) into as few
/// requests as the limits allow, first fit in order, the sets of one record always
/// in one request, so that a record's weights change together. A record too large
/// for a request alone gets one of its own, which AWS refuses (its error names it).
pub fn batches<K: PartialEq, T>(items: Vec<(K, Cost, T)>) -> Vec<Vec<T>> {
    // The sets of each record, in the order records first appear.
    let mut records: Vec<(K, Cost, Vec<T>)> = Vec::new();
    for (key, cost, item) in items {
        match records.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, total, members)) => {
                *total = total.plus(cost);
                members.push(item);
            }
            None => records.push((key, cost, vec![item])),
        }
    }
    let mut out: Vec<(Cost, Vec<T>)> = Vec::new();
    for (_, cost, members) in records {
        match out.iter_mut().find(|(used, _)| used.plus(cost).fits()) {
            Some((used, batch)) => {
                *used = used.plus(cost);
                batch.extend(members);
            }
            None => out.push((cost, members)),
        }
    }
    out.into_iter().map(|(_, batch)| batch).collect()
}

/// The requests the sets of `sets` take: [`batches`] of their UPSERTs.
pub fn upsert_batches(sets: &[RecordSetDef]) -> Vec<Vec<RecordSetDef>> {
    batches(
        sets.iter()
            .map(|d| {
                (
                    (d.name.clone(), d.record_type.clone()),
                    Cost::of(d),
                    d.clone(),
                )
            })
            .collect(),
    )
}

/// [`upsert_batches`] for weight changes sent as a DELETE and a CREATE each, which
/// cost what an UPSERT costs: each element and character once in each.
pub fn change_batches(changes: &[WeightChange]) -> Vec<Vec<WeightChange>> {
    batches(
        changes
            .iter()
            .map(|c| {
                (
                    (c.to.name.clone(), c.to.record_type.clone()),
                    Cost::of(&c.to),
                    c.clone(),
                )
            })
            .collect(),
    )
}

/// How a weighted set stands for Route 53's choice of answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No health check and no target health evaluated: always a candidate.
    Unchecked,
    /// Its health check passes (or its alias target's health is evaluated and not
    /// known to fail).
    Healthy,
    /// Its health check fails.
    Unhealthy,
}

/// Which sets of one name Route 53 answers with, given their weights and health
/// (AWS: "How Amazon Route 53 chooses records when health checking is configured";
/// "Weighted routing"):
/// - sets with a non-zero weight that are not unhealthy, by weight;
/// - when every set of non-zero weight is unhealthy, the zero-weight sets that are
///   not, in equal shares;
/// - when every set is unhealthy, or every weight is 0, all sets (not unhealthy
///   ones, unless all are) in equal shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The set identifiers answered with.
    pub sets: Vec<String>,
    /// Whether they share equally rather than by weight.
    pub equal_shares: bool,
    /// Why the answer is not simply the sets of non-zero weight.
    pub why: Option<&'static str>,
}

/// See [`Answer`]. `sets`: (set identifier, weight, health).
pub fn answering(sets: &[(&str, i64, Health)]) -> Answer {
    let up = |h: Health| h != Health::Unhealthy;
    let pick = |f: &dyn Fn(&(&str, i64, Health)) -> bool| -> Vec<String> {
        sets.iter()
            .filter(|s| f(s))
            .map(|s| s.0.to_owned())
            .collect()
    };
    let weighted = pick(&|s| s.1 > 0 && up(s.2));
    if !weighted.is_empty() {
        let skipped = sets.iter().any(|s| s.1 > 0 && !up(s.2));
        return Answer {
            sets: weighted,
            equal_shares: false,
            why: skipped.then_some("sets of non-zero weight whose health check fails are skipped"),
        };
    }
    let any_weight = sets.iter().any(|s| s.1 > 0);
    let zero = pick(&|s| s.1 == 0 && up(s.2));
    if !zero.is_empty() {
        return Answer {
            sets: zero,
            equal_shares: true,
            why: Some(if any_weight {
                "every set of non-zero weight is unhealthy, so Route 53 answers with the healthy zero-weight sets in equal shares"
            } else {
                "every weight is 0, so Route 53 answers with every healthy set in equal shares"
            }),
        };
    }
    Answer {
        sets: pick(&|_| true),
        equal_shares: true,
        why: (!sets.is_empty()).then_some(
            "every set is unhealthy, so Route 53 answers as if all were healthy, in equal shares",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, id: &str, value: &str) -> RecordSetDef {
        RecordSetDef {
            name: name.into(),
            record_type: "A".into(),
            set_identifier: id.into(),
            weight: 1,
            ttl: Some(60),
            values: vec![value.into()],
            alias: None,
            health_check_id: None,
        }
    }

    #[test]
    fn batches_stop_at_a_thousand_elements_counting_each_upsert_twice() {
        // 250 two-region records: 500 sets, 1,000 elements: one request.
        let sets: Vec<RecordSetDef> = (0..250)
            .flat_map(|r| {
                let name = format!("r{r}.example.com.");
                [set(&name, "a", "10.0.0.1"), set(&name, "b", "10.0.0.2")]
            })
            .collect();
        assert_eq!(upsert_batches(&sets).len(), 1);
        // 251: 1,004 elements: two, each record whole in one of them.
        let mut more = sets.clone();
        more.push(set("r250.example.com.", "a", "10.0.0.1"));
        more.push(set("r250.example.com.", "b", "10.0.0.2"));
        let split = upsert_batches(&more);
        assert_eq!(split.len(), 2);
        for batch in &split {
            let cost = batch
                .iter()
                .fold(Cost::default(), |c, d| c.plus(Cost::of(d)));
            assert!(cost.fits(), "{cost:?}");
            for d in batch {
                assert_eq!(batch.iter().filter(|x| x.name == d.name).count(), 2);
            }
        }
    }

    #[test]
    fn batches_stop_at_32000_characters_of_values() {
        // 70 records of two 250-character values: 70,000 characters counted: three.
        let long = "x".repeat(250);
        let sets: Vec<RecordSetDef> = (0..70)
            .flat_map(|r| {
                let name = format!("r{r}.example.com.");
                [set(&name, "a", &long), set(&name, "b", &long)]
            })
            .collect();
        let split = upsert_batches(&sets);
        assert_eq!(split.len(), 3);
        assert_eq!(split.iter().map(Vec::len).sum::<usize>(), 140);
    }

    #[test]
    fn route53_skips_unhealthy_sets_then_falls_back_to_zero_weight_then_to_all() {
        use super::{Health::*, answering};
        // Both weighted and healthy: by weight.
        let a = answering(&[("east", 50, Healthy), ("west", 50, Unchecked)]);
        assert_eq!(
            (a.sets, a.equal_shares, a.why),
            (vec!["east".into(), "west".into()], false, None)
        );
        // One weighted set fails: the other takes all.
        let a = answering(&[("east", 50, Unhealthy), ("west", 50, Healthy)]);
        assert_eq!(a.sets, vec!["west".to_owned()]);
        assert!(a.why.is_some());
        // Every non-zero set fails: the zero-weight ones answer, equally.
        let a = answering(&[("east", 0, Healthy), ("west", 100, Unhealthy)]);
        assert_eq!((a.sets, a.equal_shares), (vec!["east".to_owned()], true));
        // All fail: all answer, as if healthy.
        let a = answering(&[("east", 0, Unhealthy), ("west", 100, Unhealthy)]);
        assert_eq!((a.sets.len(), a.equal_shares), (2, true));
        // Every weight 0: equal shares among the healthy.
        let a = answering(&[("east", 0, Healthy), ("west", 0, Unhealthy)]);
        assert_eq!((a.sets, a.equal_shares), (vec!["east".to_owned()], true));
    }
}
