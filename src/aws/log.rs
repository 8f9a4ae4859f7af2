//! A log line per AWS call, through `tracing` (target `evac::aws`): service,
//! operation, region, latency, retries and how it ended. Never credentials: only the
//! operation's metadata and the response status are read.

use std::time::Instant;

use aws_sdk_autoscaling::config::Region as SdkRegion;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Logs every call of the client it is added to.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallLog;

/// When a call began and how many attempts it has made.
#[derive(Clone, Debug)]
struct Started {
    at: Instant,
    attempts: u32,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "evac::CallLog"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started {
            at: Instant::now(),
            attempts: 0,
        });
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(mut started) = cfg.load::<Started>().cloned() {
            started.attempts += 1;
            cfg.interceptor_state().store_put(started);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?", "?"), |m| (m.service(), m.name()));
        let region = cfg.load::<SdkRegion>().map_or("-", |r| r.as_ref());
        let (latency_ms, attempts) = cfg
            .load::<Started>()
            .map_or((0, 1), |s| (s.at.elapsed().as_millis(), s.attempts.max(1)));
        let status = context.response().map(|r| r.status().as_u16());
        let result = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            Some(Err(_)) => "error",
            None => "none",
        };
        tracing::info!(
            target: "evac::aws",
            service,
            operation,
            region,
            latency_ms = u64::try_from(latency_ms).unwrap_or(u64::MAX),
            retries = attempts - 1,
            status = status.unwrap_or(0),
            result,
            "call"
        );
        Ok(())
    }
}

/// The run every call of this process is made for, once it is known.
static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Tags every later AWS call of this process with `run_id` (in its user agent).
pub fn tag_calls_with_run(run_id: &str) {
    let _ = RUN_ID.set(run_id.to_owned());
}

/// What evac adds to the user agent of a call: its version, and the run when there
/// is one, so that CloudTrail's `userAgent` shows which drill made each call.
pub fn user_agent_suffix() -> String {
    let mut suffix = format!("evac/{}", env!("CARGO_PKG_VERSION"));
    if let Some(run) = RUN_ID.get() {
        suffix.push_str(" evac-run/");
        suffix.push_str(run);
    }
    suffix
}

/// Adds [`user_agent_suffix`] to the `User-Agent` of every call of the client it is
/// added to (the header is not signed, so this is done just before sending).
#[derive(Clone, Copy, Debug, Default)]
pub struct UserAgent;

impl Intercept for UserAgent {
    fn name(&self) -> &'static str {
        "evac::UserAgent"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        let agent = match headers.get("user-agent") {
            Some(sdk) => format!("{sdk} {}", user_agent_suffix()),
            None => user_agent_suffix(),
        };
        headers.insert("user-agent", agent);
        Ok(())
    }
}

/// Reports every attempt of the client it is added to, and every answer, to the
/// process's [`crate::pulse::global`], by the client's region: how a region that
/// does not answer is named within seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pulse;

impl Intercept for Pulse {
    fn name(&self) -> &'static str {
        "evac::Pulse"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(region) = cfg.load::<SdkRegion>() {
            crate::pulse::global().sent(region.as_ref());
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(region) = cfg.load::<SdkRegion>() {
            crate::pulse::global().answered(region.as_ref());
        }
        Ok(())
    }
}
