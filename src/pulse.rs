//! Whether each region answers: the requests sent to it and the answers that came
//! back, so that a region that does not answer at all is told apart from one that
//! is only slow, and named within seconds instead of after every call's retries.
//!
//! The AWS clients report each attempt and each answer (any HTTP answer, an error
//! too: a region that says no is answering); [`watch`] runs a region's reads and
//! gives up on them once the region has left a request unanswered for the budget
//! while answering nothing at all.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Requests and answers per region.
#[derive(Debug, Default)]
pub struct Pulse {
    regions: Mutex<BTreeMap<String, Beat>>,
}

#[derive(Debug, Default)]
struct Beat {
    /// When the oldest request sent since the last answer went out.
    waiting_since: Option<Instant>,
    /// Requests sent since the last answer.
    unanswered: u32,
}

/// A region that left requests unanswered for a whole budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    /// The region.
    pub region: String,
    /// Requests it left unanswered.
    pub unanswered: u32,
    /// How long it was given.
    pub budget: Duration,
}

impl std::fmt::Display for Silence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.unanswered;
        write!(
            f,
            "{} is not answering ({n} request{} unanswered after {}s)",
            self.region,
            if n == 1 { "" } else { "s" },
            self.budget.as_secs()
        )
    }
}

/// The pulse every AWS client of this process reports to.
pub fn global() -> &'static Pulse {
    static PULSE: std::sync::OnceLock<Pulse> = std::sync::OnceLock::new();
    PULSE.get_or_init(Pulse::default)
}

impl Pulse {
    fn beat<T>(&self, region: &str, f: impl FnOnce(&mut Beat) -> T) -> T {
        let mut regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        f(regions.entry(region.to_owned()).or_default())
    }

    /// A request to `region` went out.
    pub fn sent(&self, region: &str) {
        self.beat(region, |b| {
            b.waiting_since.get_or_insert_with(Instant::now);
            b.unanswered += 1;
        });
    }

    /// `region` answered a request.
    pub fn answered(&self, region: &str) {
        self.beat(region, |b| {
            b.waiting_since = None;
            b.unanswered = 0;
        });
    }

    /// Whether `region` has left a request unanswered for `budget` and answered
    /// nothing since.
    pub fn silence(&self, region: &str, budget: Duration) -> Option<Silence> {
        self.beat(region, |b| {
            let since = b.waiting_since?;
            (since.elapsed() >= budget).then(|| Silence {
                region: region.to_owned(),
                unanswered: b.unanswered,
                budget,
            })
        })
    }
}

/// Runs `reads` of `region`, giving up on them once the region is silent for
/// `budget` (see [`Pulse::silence`]). Without a pulse, the reads run to their end.
pub async fn watch<F: std::future::Future>(
    pulse: Option<&Pulse>,
    region: &str,
    budget: Duration,
    reads: F,
) -> Result<F::Output, Silence> {
    let Some(pulse) = pulse else {
        return Ok(reads.await);
    };
    let listen = async {
        // A tenth of the budget: named within 10% of it, for a few lock takes.
        let tick = (budget / 10).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            if let Some(silence) = pulse.silence(region, budget) {
                return silence;
            }
        }
    };
    tokio::select! {
        done = reads => Ok(done),
        silence = listen => Err(silence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_region_that_answers_nothing_is_named_after_its_budget() {
        let pulse = Pulse::default();
        let budget = Duration::from_secs(10);
        let held = async {
            pulse.sent("eu-west-1");
            pulse.sent("eu-west-1");
            std::future::pending::<()>().await;
        };
        let started = Instant::now();
        let silence = watch(Some(&pulse), "eu-west-1", budget, held)
            .await
            .expect_err("a region that never answers is given up on");
        assert_eq!(silence.unanswered, 2);
        assert!(started.elapsed() >= budget && started.elapsed() <= budget * 11 / 10);
        assert_eq!(
            silence.to_string(),
            "eu-west-1 is not answering (2 requests unanswered after 10s)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_region_that_keeps_answering_is_not_given_up_on() {
        let pulse = Pulse::default();
        let budget = Duration::from_secs(10);
        // Thirty reads of 5 s each: 150 s in all, never 10 s without an answer.
        let slow = async {
            for _ in 0..30 {
                pulse.sent("eu-west-1");
                tokio::time::sleep(Duration::from_secs(5)).await;
                pulse.answered("eu-west-1");
            }
            "read"
        };
        assert_eq!(
            watch(Some(&pulse), "eu-west-1", budget, slow).await,
            Ok("read")
        );
        // Another region's silence is not this one's.
        pulse.sent("us-east-1");
        tokio::time::sleep(budget).await;
        assert!(pulse.silence("eu-west-1", budget).is_none());
        assert!(pulse.silence("us-east-1", budget).is_some());
    }
}
