//! Drill notifications: the events of a run, resume or rollback sent to an SNS topic,
//! an EventBridge bus and a webhook, besides the terminal.
//!
//! [`Notifier`] is a [`Reporter`] in front of the terminal or JSON one: every
//! journal entry still goes there, and the entries people follow (run started, step
//! started and finished or failed, stop condition fired, run finished, rollback
//! started and finished) and approvals waiting go, as the same JSON `--output json`
//! prints under `event`, to a worker thread that sends them in order. A failed send
//! is said on the terminal and never stops the drill.

use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use crate::engine::reporter::{Progress, Reporter};
use crate::journal::{Entry, Event};
use crate::playbook::Notify;

/// How long one notification may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a command waits, as it ends, for its last notifications.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// What each notification carries.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    /// Always `evac`.
    pub source: &'static str,
    /// The run (none for `evac check`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// The playbook's name.
    pub playbook: String,
    /// Who runs the command.
    pub operator: String,
    /// One line for people.
    pub summary: String,
    /// The journal entry, as `--output json` prints it (none for an approval that
    /// is waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// The event's kind (`run_started`, ..., `approval_waiting`).
    pub kind: String,
}

/// Reports to `inner` and notifies.
pub struct Notifier<'a> {
    inner: &'a dyn Reporter,
    run_id: String,
    playbook: String,
    operator: String,
    sender: Option<mpsc::Sender<Notification>>,
    done: Option<mpsc::Receiver<()>>,
}

impl<'a> Notifier<'a> {
    /// Reports to `inner`, and, when `notify` names somewhere, sends there too.
    pub fn new(
        inner: &'a dyn Reporter,
        notify: Option<&Notify>,
        run_id: &str,
        playbook: &str,
    ) -> Self {
        let (sender, done) = match notify {
            Some(notify) => {
                let (tx, rx) = mpsc::channel();
                let (done_tx, done_rx) = mpsc::channel();
                let notify = notify.clone();
                let started = std::thread::Builder::new()
                    .name("evac-notify".into())
                    .spawn(move || {
                        deliver(&notify, &rx);
                        let _ = done_tx.send(());
                    });
                match started {
                    Ok(_) => (Some(tx), Some(done_rx)),
                    Err(err) => {
                        crate::say_warning!(
                            "cannot start sending notifications: {err}; the drill goes on without them"
                        );
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        Self {
            inner,
            run_id: run_id.to_owned(),
            playbook: playbook.to_owned(),
            operator: crate::journal::user_name(),
            sender,
            done,
        }
    }

    fn send(&self, kind: &str, summary: String, event: Option<serde_json::Value>) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Notification {
                source: "evac",
                run_id: self.run_id.clone(),
                playbook: self.playbook.clone(),
                operator: self.operator.clone(),
                summary,
                event,
                kind: kind.to_owned(),
            });
        }
    }

    /// Sends one notification that is not a journal entry's (`evac check`'s).
    pub fn send_one(&self, kind: &str, summary: String, event: Option<serde_json::Value>) {
        self.send(kind, summary, event);
    }

    /// Waits (a bounded time) for the notifications still queued to be sent; what
    /// dropping it does too, on every way out of a command.
    pub fn finish(self) {}
}

impl Drop for Notifier<'_> {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(done) = self.done.take()
            && done.recv_timeout(FLUSH_TIMEOUT).is_err()
        {
            crate::say_warning!(
                "notifications still unsent after {}s were dropped",
                FLUSH_TIMEOUT.as_secs()
            );
        }
    }
}

/// The one line people get for an entry worth a notification.
fn summary(run: &str, playbook: &str, event: &Event) -> Option<String> {
    let what = match event {
        Event::RunStarted { user, host, .. } => format!("started by {user} on {host}"),
        Event::StepStarted { step } => format!("step {step} started"),
        Event::StepFinished { step } => format!("step {step} finished"),
        Event::StepSkipped { step, reason } => format!("step {step} skipped: {reason}"),
        Event::StepFailed { step, error, .. } => format!("step {step} failed: {error}"),
        Event::StopConditionFired { condition, state } => {
            format!("stop condition {condition} fired ({state}): the run halts")
        }
        Event::RunFinished { outcome, .. } => format!("run ended: {}", outcome_word(outcome)),
        Event::RollbackStarted { fast } => {
            format!("rollback started{}", if *fast { " (fast)" } else { "" })
        }
        Event::RollbackFinished {
            outcome, verified, ..
        } => format!(
            "rollback ended: {}{}",
            outcome_word(outcome),
            if *verified {
                "; live state matches the originals"
            } else {
                "; live state differs from the originals"
            }
        ),
        Event::Attached { .. }
        | Event::Intent { .. }
        | Event::Applied { .. }
        | Event::Converged { .. }
        | Event::Reconciled { .. }
        | Event::Baked { .. }
        | Event::ApprovalDeclined { .. }
        | Event::Approved { .. }
        | Event::Interrupted
        | Event::ScaledItself { .. }
        | Event::Closed { .. }
        | Event::RollbackIntent { .. }
        | Event::RollbackApplied { .. }
        | Event::RollbackConverged { .. } => return None,
    };
    Some(format!("{playbook} run {run}: {what}"))
}

fn outcome_word(outcome: &crate::journal::Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Reporter for Notifier<'_> {
    fn entry(&self, entry: &Entry) {
        self.inner.entry(entry);
        if let Some(line) = summary(&self.run_id, &self.playbook, &entry.event) {
            let value = serde_json::to_value(entry).ok();
            let kind = value
                .as_ref()
                .and_then(|v| v["event"].as_str())
                .unwrap_or_default()
                .to_owned();
            self.send(&kind, line, value);
        }
    }

    fn progress(&self, progress: &Progress) {
        self.inner.progress(progress);
    }

    fn ask(&self, question: &str) -> Option<tokio::sync::oneshot::Receiver<bool>> {
        self.send(
            "approval_waiting",
            format!(
                "{} run {}: waiting for approval: {question}",
                self.playbook, self.run_id
            ),
            None,
        );
        self.inner.ask(question)
    }

    fn asked(&self) {
        self.inner.asked();
    }

    fn recall(&self, history: &crate::journal::history::History) {
        self.inner.recall(history);
    }
}

/// Sends each notification to every place, in order, until the channel closes.
fn deliver(notify: &Notify, queue: &mpsc::Receiver<Notification>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            crate::say_warning!("cannot send notifications: {err}; the drill goes on without them");
            return;
        }
    };
    let ctx = runtime.block_on(crate::aws::AwsContext::load(None));
    let webhook = notify
        .webhook
        .as_ref()
        .map(|hook| match (&hook.url, &hook.url_env) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| format!("the webhook's URL is read from {var}, which is not set")),
            (None, None) => Err("the webhook has no URL".to_owned()),
        });
    let agent = webhook_agent();
    // The clients, made once for every notification: SNS in the topic's region.
    let sns = notify.sns.as_ref().map(|topic| {
        let region = topic.split(':').nth(3).unwrap_or("us-east-1");
        (topic, ctx.sns(region))
    });
    let eventbridge = notify
        .eventbridge
        .as_ref()
        .map(|bus| (bus, ctx.eventbridge(bus.region.as_str())));
    while let Ok(note) = queue.recv() {
        let payload = serde_json::to_string(&note).unwrap_or_default();
        if let Some((topic, client)) = &sns {
            let sent = runtime.block_on(async {
                let subject: String = format!("evac: {}", note.summary)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect();
                tokio::time::timeout(
                    SEND_TIMEOUT,
                    client
                        .publish()
                        .topic_arn(topic.as_str())
                        .subject(subject)
                        .message(&payload)
                        .send(),
                )
                .await
                .map_err(|_| "timed out".to_owned())?
                .map(|_| ())
                .map_err(|e| crate::aws::sdk_error_text(&e))
            });
            warn_on(&format!("SNS topic {topic}"), sent);
        }
        if let Some((bus, client)) = &eventbridge {
            let sent = runtime.block_on(async {
                let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("evac")
                    .detail_type(format!("evac {}", note.kind))
                    .detail(&payload)
                    .event_bus_name(&bus.bus)
                    .build();
                let answer =
                    tokio::time::timeout(SEND_TIMEOUT, client.put_events().entries(entry).send())
                        .await
                        .map_err(|_| "timed out".to_owned())?
                        .map_err(|e| crate::aws::sdk_error_text(&e))?;
                match answer.failed_entry_count() {
                    0 => Ok(()),
                    _ => Err(answer
                        .entries()
                        .iter()
                        .filter_map(|e| e.error_message())
                        .collect::<Vec<_>>()
                        .join("; ")),
                }
            });
            warn_on(&format!("EventBridge bus {}", bus.bus), sent);
        }
        if let Some(url) = &webhook {
            let sent = url.clone().and_then(|url| {
                let body =
                    serde_json::json!({ "text": format!("evac: {}", note.summary), "evac": note });
                agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(body.to_string())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            warn_on("the webhook", sent);
        }
    }
}

fn warn_on(place: &str, sent: Result<(), String>) {
    if let Err(why) = sent {
        crate::say_warning!("notification to {place} failed: {why}; the drill goes on");
    }
}

/// An HTTP agent for webhooks: TLS with the AWS SDK's crypto provider, a timeout,
/// and an error for any status that is not a success.
fn webhook_agent() -> ureq::Agent {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    ureq::Agent::config_builder()
        .timeout_global(Some(SEND_TIMEOUT))
        .http_status_as_error(true)
        .build()
        .new_agent()
}
