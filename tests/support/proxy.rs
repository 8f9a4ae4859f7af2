//! A fault-injecting HTTP proxy between evac and the emulator. Per operation it
//! answers with throttling or 5xx errors (every Nth call, or a share of calls),
//! adds latency, or drops the connection; it counts every call by operation.
//!
//! With a [`Timing`] it is also a model of how AWS behaves in time, which the
//! instant emulator hides: a latency on every call, Route 53 as a token bucket per
//! account and Auto Scaling as one per account and region (both answer `Throttling`
//! when empty), Route 53 changes PENDING for a while before INSYNC, new
//! instances `Pending` for a while before `InService`, then `initial` in their
//! target groups for a while before `healthy`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer 400 Throttling.
    Throttle,
    /// Answer 503 ServiceUnavailable.
    ServerError,
    /// Answer 400 InvalidInput: refused, and not worth trying again.
    Invalid,
    /// Forward after a delay.
    Latency(Duration),
    /// Close the connection without an answer.
    Drop,
    /// Forward the call, then close the connection without passing its answer on:
    /// it took effect, and the caller never heard.
    LoseAnswer,
    /// Forward the call, then hold its answer until [`FaultProxy::release`]: the
    /// call took effect and its caller waits, so a test can stop the caller at
    /// exactly that point.
    Pause,
    /// Hold the call unanswered, never forwarded, until [`FaultProxy::release`];
    /// then close it unanswered, and let every later call pass: a region that does
    /// not answer, then comes back.
    Hold,
}

/// When a fault applies.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The operation (`UpdateAutoScalingGroup`, `ChangeResourceRecordSets`, ...) or `*`.
    pub operation: String,
    /// The fault.
    pub fault: Fault,
    /// Inject on this share of calls, in percent (deterministic: every call whose
    /// count lands in the share).
    pub percent: u32,
    /// Or only on this call of the operation (1 for the first).
    pub nth: Option<u32>,
    /// With `nth`: on that call and every one after it (a service that stops
    /// answering).
    pub onward: bool,
    /// Only calls whose request holds these bytes count (a journal write holding an
    /// intent, not a lease renewal).
    pub holding: Option<Vec<u8>>,
    /// Only calls signed for this region count.
    pub region: Option<String>,
}

impl Rule {
    /// A fault on `percent`% of the calls of `operation` (`*` for all).
    pub fn rate(operation: &str, fault: Fault, percent: u32) -> Self {
        Rule {
            operation: operation.to_owned(),
            fault,
            percent,
            nth: None,
            onward: false,
            holding: None,
            region: None,
        }
    }

    /// A fault on every call signed for `region` (Route 53 signs for us-east-1).
    pub fn region(region: &str, fault: Fault) -> Self {
        Rule {
            region: Some(region.to_owned()),
            ..Self::rate("*", fault, 100)
        }
    }

    /// A fault on the `n`th call of `operation` only.
    pub fn nth(operation: &str, fault: Fault, n: u32) -> Self {
        Rule {
            operation: operation.to_owned(),
            fault,
            percent: 0,
            nth: Some(n),
            onward: false,
            holding: None,
            region: None,
        }
    }

    /// Counts only the calls whose request holds `bytes`.
    pub fn holding(self, bytes: &str) -> Self {
        Rule {
            holding: Some(bytes.as_bytes().to_vec()),
            ..self
        }
    }

    /// A fault on the `n`th call of `operation` and every later one.
    pub fn from(operation: &str, fault: Fault, n: u32) -> Self {
        Rule {
            onward: true,
            ..Self::nth(operation, fault, n)
        }
    }

    fn counts(&self, operation: &str, request: &[u8]) -> bool {
        (self.operation == "*" || self.operation == operation)
            && self
                .holding
                .as_ref()
                .is_none_or(|bytes| find(request, bytes).is_some())
            && self
                .region
                .as_ref()
                .is_none_or(|region| scope(request).is_some_and(|(_, signed, _)| &signed == region))
    }

    fn applies(&self, n: u32) -> bool {
        match self.nth {
            Some(k) => n == k || (self.onward && n > k),
            None => hits(n, self.percent),
        }
    }
}

/// How AWS behaves in time (see `notes/aws-timing.md`), scaled down for a benchmark.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Added to every call before it is answered.
    pub latency: Duration,
    /// Route 53 requests per second per account (all Route 53 APIs together); the
    /// bucket holds one second's worth.
    pub route53_rate: f64,
    /// Auto Scaling requests per second per account and region; the bucket holds one
    /// second's worth.
    pub autoscaling_rate: f64,
    /// How long a Route 53 change stays PENDING before INSYNC.
    pub change_pending: Duration,
    /// How long a new instance stays `Pending` before `InService`.
    pub launch_pending: Duration,
    /// How long a new instance, once InService, stays `initial` in its target
    /// groups before `healthy`.
    pub health_initial: Duration,
}

impl Timing {
    /// Parses `latency=40ms,route53=5,autoscaling=20,sync=2s,launch=3s,healthy=0s`
    /// (any subset; the rest keep these values).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut timing = Timing {
            latency: Duration::from_millis(40),
            route53_rate: 5.0,
            autoscaling_rate: 20.0,
            change_pending: Duration::from_secs(2),
            launch_pending: Duration::from_secs(3),
            health_initial: Duration::ZERO,
        };
        let duration = |v: &str| -> Result<Duration, String> {
            if let Some(ms) = v.strip_suffix("ms") {
                ms.parse()
                    .map(Duration::from_millis)
                    .map_err(|e| format!("{v}: {e}"))
            } else if let Some(s) = v.strip_suffix('s') {
                s.parse()
                    .map(Duration::from_secs_f64)
                    .map_err(|e| format!("{v}: {e}"))
            } else {
                Err(format!("{v}: write a duration such as 40ms or 2s"))
            }
        };
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part}: write KEY=VALUE"))?;
            match key {
                "latency" => timing.latency = duration(value)?,
                "sync" => timing.change_pending = duration(value)?,
                "launch" => timing.launch_pending = duration(value)?,
                "healthy" => timing.health_initial = duration(value)?,
                "route53" => {
                    timing.route53_rate = value.parse().map_err(|e| format!("{part}: {e}"))?
                }
                "autoscaling" => {
                    timing.autoscaling_rate = value.parse().map_err(|e| format!("{part}: {e}"))?
                }
                other => return Err(format!("unknown timing key `{other}`")),
            }
        }
        Ok(timing)
    }
}

/// A token bucket: `rate` tokens a second, holding at most one second's worth.
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    calls: BTreeMap<String, u32>,
    injected: BTreeMap<String, u32>,
    timing: Option<Timing>,
    buckets: BTreeMap<String, Bucket>,
    /// Throttling answers the model gave, per operation.
    throttled: BTreeMap<String, u32>,
    /// When each Route 53 change was submitted.
    changes: BTreeMap<String, Instant>,
    /// When each known instance was launched (`None`: before the model saw its group change).
    instances: BTreeMap<String, Option<Instant>>,
    /// When each group's capacity or instances were last changed.
    mutated: BTreeMap<String, Instant>,
    /// The group of each known instance.
    instance_groups: BTreeMap<String, String>,
    /// Targets the model showed `initial` instead of `healthy`.
    held: u32,
    /// Calls of each rule that counts only some calls (see [`Rule::holding`]).
    matched: BTreeMap<usize, u32>,
    /// Answers held by [`Fault::Pause`], and whether they may go.
    paused: Arc<(Mutex<(u32, bool)>, std::sync::Condvar)>,
    /// Calls seen per region they are signed for.
    regions: BTreeMap<String, u32>,
}

impl State {
    /// Takes a token from the bucket `key`; false when it is empty.
    fn take(&mut self, key: String, rate: f64) -> bool {
        let now = Instant::now();
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A running proxy; it stops when the test process ends.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Self {
        Self::with_timing(upstream, rules, None)
    }

    /// Starts a proxy that also models AWS's timing (see [`Timing`]).
    pub fn with_timing(upstream: &str, rules: Vec<Rule>, timing: Option<Timing>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let state = Arc::new(Mutex::new(State {
            rules,
            timing,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (state, upstream) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &state);
                });
            }
        });
        FaultProxy { url, state }
    }

    /// Calls seen per operation.
    pub fn calls(&self) -> BTreeMap<String, u32> {
        self.state
            .lock()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }

    /// Faults injected per operation.
    pub fn injected(&self) -> BTreeMap<String, u32> {
        self.state
            .lock()
            .map(|s| s.injected.clone())
            .unwrap_or_default()
    }

    /// Answers held by [`Fault::Pause`] so far (their calls took effect).
    pub fn paused(&self) -> u32 {
        let paused = self.state.lock().map(|s| s.paused.clone());
        paused.map_or(0, |p| p.0.lock().map(|h| h.0).unwrap_or_default())
    }

    /// Lets every held answer go, and every later one pass at once.
    pub fn release(&self) {
        if let Ok(paused) = self.state.lock().map(|s| s.paused.clone()) {
            let (lock, released) = &*paused;
            if let Ok(mut held) = lock.lock() {
                held.1 = true;
            }
            released.notify_all();
        }
    }

    /// Calls seen signed for `region`.
    pub fn calls_in(&self, region: &str) -> u32 {
        self.state
            .lock()
            .map(|s| s.regions.get(region).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Targets the timing model showed `initial` (not yet healthy) in a target group.
    pub fn held(&self) -> u32 {
        self.state.lock().map(|s| s.held).unwrap_or_default()
    }

    /// Throttling answers the timing model gave, per operation.
    pub fn throttled(&self) -> BTreeMap<String, u32> {
        self.state
            .lock()
            .map(|s| s.throttled.clone())
            .unwrap_or_default()
    }
}

/// One request per connection: read it, maybe fault it, else forward it and relay
/// the answer with `Connection: close`.
fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let request = read_request(&mut client)?;
    if request.starts_with(b"POST /__proxy/reset") {
        {
            let mut s = state
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            s.calls.clear();
            s.injected.clear();
            s.throttled.clear();
        }
        return client
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    if request.starts_with(b"GET /__proxy/stats") {
        let body = {
            let s = state
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            stats_json(&[
                ("calls", &s.calls),
                ("injected", &s.injected),
                ("throttled", &s.throttled),
            ])
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return client.write_all(answer.as_bytes());
    }
    let operation = operation(&request);
    if let Some(log) = std::env::var_os("AWS_MODEL_LOG") {
        // A timeline of arrivals, for looking into a benchmark's figures.
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(file, "{at:.3} {operation}");
        }
    }
    let timing = state
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?
        .timing
        .clone();
    let (fault, throttled) = {
        let mut s = state
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let n = {
            let count = s.calls.entry(operation.clone()).or_default();
            *count += 1;
            *count
        };
        if let Some((_, region, _)) = scope(&request) {
            *s.regions.entry(region).or_default() += 1;
        }
        let throttled = match (&timing, scope(&request)) {
            (Some(t), Some((key, _, service))) if service == "route53" => {
                !s.take(format!("route53 {key}"), t.route53_rate)
            }
            (Some(t), Some((key, region, service))) if service == "autoscaling" => {
                !s.take(format!("autoscaling {key} {region}"), t.autoscaling_rate)
            }
            _ => false,
        };
        if throttled {
            *s.throttled.entry(operation.clone()).or_default() += 1;
        }
        let mut fault = None;
        for i in 0..s.rules.len() {
            if !s.rules[i].counts(&operation, &request) {
                continue;
            }
            let nth = if s.rules[i].holding.is_some() {
                let count = s.matched.entry(i).or_default();
                *count += 1;
                *count
            } else {
                n
            };
            if fault.is_none() && s.rules[i].applies(nth) {
                fault = Some(s.rules[i].fault);
            }
        }
        if fault.is_some() {
            *s.injected.entry(operation.clone()).or_default() += 1;
        }
        (fault, throttled)
    };
    let error = |status: &str, code: &str| {
        let body = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        );
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    // The token is taken as the request arrives; every answer, throttled or not,
    // comes back after the latency.
    if let Some(timing) = &timing {
        std::thread::sleep(timing.latency);
    }
    if throttled {
        return client.write_all(error("400 Bad Request", "Throttling").as_bytes());
    }
    match fault {
        Some(Fault::Throttle) => {
            return client.write_all(error("400 Bad Request", "Throttling").as_bytes());
        }
        Some(Fault::ServerError) => {
            return client
                .write_all(error("503 Service Unavailable", "ServiceUnavailable").as_bytes());
        }
        Some(Fault::Invalid) => {
            return client.write_all(error("400 Bad Request", "InvalidInput").as_bytes());
        }
        Some(Fault::Drop) => return Ok(()),
        // Held through the outage: closed unanswered.
        Some(Fault::Hold) if until_released(state, false)? => return Ok(()),
        // Released: the region answers again.
        Some(Fault::Hold) => {}
        Some(Fault::LoseAnswer) => {
            forward(upstream, &request)?;
            return Ok(());
        }
        Some(Fault::Pause) => {
            let answer = forward(upstream, &request)?;
            until_released(state, true)?;
            return client.write_all(&with_connection_close(&answer));
        }
        Some(Fault::Latency(d)) => std::thread::sleep(d),
        None => {}
    }
    if let Some(refusal) = refused_as_aws_refuses(&operation, &request, upstream)? {
        return client.write_all(&refusal);
    }
    if timing.is_none() {
        let answer = forward(upstream, &request)?;
        return client.write_all(&with_connection_close(&answer));
    }
    let group = form_value(&request, "AutoScalingGroupName");
    let changes_group = matches!(
        operation.as_str(),
        "UpdateAutoScalingGroup" | "SetDesiredCapacity" | "TerminateInstanceInAutoScalingGroup"
    );
    if changes_group && let Some(group) = &group {
        // Learn the instances the group has before the change: they are not new.
        let describe = describe_request(&request, group);
        let answer = forward(upstream, &describe)?;
        let mut s = state
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        model_instances(&mut s, &answer, false);
    }
    let answer = forward(upstream, &request)?;
    let mut s = state
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?;
    if changes_group {
        let group = group.or_else(|| {
            // TerminateInstanceInAutoScalingGroup names the instance only.
            let instance = form_value(&request, "InstanceId")?;
            s.instance_groups.get(&instance).cloned()
        });
        if let Some(group) = group {
            s.mutated.insert(group, Instant::now());
        }
    }
    let answer = match operation.as_str() {
        "DescribeAutoScalingGroups" => model_instances(&mut s, &answer, true),
        "DescribeTargetHealth" => model_health(&mut s, &answer),
        "ChangeResourceRecordSets" => {
            if let Some(id) = between(&answer, b"<Id>", b"</Id>") {
                let id = id.trim_start_matches("/change/").to_owned();
                s.changes.insert(id, Instant::now());
            }
            replace_body(
                &answer,
                "<Status>INSYNC</Status>",
                "<Status>PENDING</Status>",
            )
        }
        "GetChange" => {
            let pending = between(&answer, b"<Id>", b"</Id>")
                .map(|id| id.trim_start_matches("/change/").to_owned())
                .and_then(|id| s.changes.get(&id).copied())
                .zip(timing.as_ref())
                .is_some_and(|(at, t)| at.elapsed() < t.change_pending);
            if pending {
                replace_body(
                    &answer,
                    "<Status>INSYNC</Status>",
                    "<Status>PENDING</Status>",
                )
            } else {
                answer
            }
        }
        _ => answer,
    };
    drop(s);
    client.write_all(&with_connection_close(&answer))
}

/// Waits until [`FaultProxy::release`] (counting the wait among the held answers
/// when `count`); returns whether it had to wait.
fn until_released(state: &Mutex<State>, count: bool) -> std::io::Result<bool> {
    let paused = state
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?
        .paused
        .clone();
    let (lock, released) = &*paused;
    let mut held = lock.lock().map_err(|_| std::io::Error::other("poisoned"))?;
    if count {
        held.0 += 1;
    }
    let waited = !held.1;
    while !held.1 {
        held = released
            .wait(held)
            .map_err(|_| std::io::Error::other("poisoned"))?;
    }
    Ok(waited)
}

/// Sends one request upstream and reads the whole answer.
fn forward(upstream: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&with_connection_close(request))?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    Ok(answer)
}

/// The access key, region and service of a signed request.
fn scope(request: &[u8]) -> Option<(String, String, String)> {
    let text = String::from_utf8_lossy(request);
    let credential = text.split("Credential=").nth(1)?;
    let mut parts = credential.split('/');
    let key = parts.next()?.to_owned();
    let _date = parts.next()?;
    let region = parts.next()?.to_owned();
    let service = parts.next()?.to_owned();
    Some((key, region, service))
}

/// A form field of a query API request body, decoded.
fn form_value(request: &[u8], name: &str) -> Option<String> {
    let end = find(request, b"\r\n\r\n")?;
    let body = String::from_utf8_lossy(&request[end + 4..]).into_owned();
    body.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(|v| {
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let bytes = v.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if bytes[i] == b'%'
                    && let Some(b) = hex
                {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
}

/// A DescribeAutoScalingGroups request for one group, signed as `original` was (the
/// emulator reads the account from the key and does not check signatures).
fn describe_request(original: &[u8], group: &str) -> Vec<u8> {
    let end = find(original, b"\r\n\r\n").unwrap_or(original.len());
    let body = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
        group
            .replace('%', "%25")
            .replace('&', "%26")
            .replace('=', "%3D")
    );
    with_body(&original[..end], body.as_bytes())
}

/// The text between the first `open` and the `close` after it.
fn between(message: &[u8], open: &[u8], close: &[u8]) -> Option<String> {
    let start = find(message, open)? + open.len();
    let len = find(&message[start..], close)?;
    Some(String::from_utf8_lossy(&message[start..start + len]).into_owned())
}

/// AWS's refusal of a request the emulator would answer, where AWS keeps a rule the
/// emulator does not (`../shared/notes/aws-rules.md`): GetHealthCheckStatus cannot
/// read a calculated health check (its status is a CloudWatch metric). The check's
/// type is asked of the emulator.
fn refused_as_aws_refuses(
    operation: &str,
    request: &[u8],
    upstream: &str,
) -> std::io::Result<Option<Vec<u8>>> {
    if operation != "GetHealthCheckStatus" {
        return Ok(None);
    }
    let line_end = find(request, b"\r\n").unwrap_or(request.len());
    let first = String::from_utf8_lossy(&request[..line_end]).replacen("/status", "", 1);
    let mut probe = first.into_bytes();
    probe.extend_from_slice(&request[line_end..]);
    let answer = forward(upstream, &probe)?;
    if find(&answer, b"<Type>CALCULATED</Type>").is_none() {
        return Ok(None);
    }
    let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidInput</Code><Message>GetHealthCheckStatus cannot read a calculated health check</Message></Error><RequestId>proxy</RequestId></ErrorResponse>";
    Ok(Some(
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    ))
}

/// Replaces `from` with `to` in the body of an HTTP message and fixes its length.
fn replace_body(message: &[u8], from: &str, to: &str) -> Vec<u8> {
    let Some(end) = find(message, b"\r\n\r\n") else {
        return message.to_vec();
    };
    let body = String::from_utf8_lossy(&message[end + 4..]).replace(from, to);
    with_body(&message[..end], body.as_bytes())
}

/// An HTTP message with `head` and a new body, its Content-Length set to match.
fn with_body(head: &[u8], body: &[u8]) -> Vec<u8> {
    let head = String::from_utf8_lossy(head);
    let mut lines: Vec<String> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_owned)
        .collect();
    lines.push(format!("Content-Length: {}", body.len()));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// Learns the instances of a DescribeAutoScalingGroups answer and, when `rewrite`,
/// shows those launched less than the model's launch time ago as `Pending`. An
/// instance first seen after its group changed was launched by that change.
fn model_instances(s: &mut State, answer: &[u8], rewrite: bool) -> Vec<u8> {
    let Some(end) = find(answer, b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let body = String::from_utf8_lossy(&answer[end + 4..]).into_owned();
    let launch = s
        .timing
        .as_ref()
        .map_or(Duration::ZERO, |t| t.launch_pending);
    let now = Instant::now();
    let mut out = String::with_capacity(body.len());
    let mut groups = body.split("<AutoScalingGroupName>");
    out.push_str(groups.next().unwrap_or_default());
    for chunk in groups {
        out.push_str("<AutoScalingGroupName>");
        let group = chunk.split('<').next().unwrap_or_default().to_owned();
        let mut members = chunk.split("<InstanceId>");
        out.push_str(members.next().unwrap_or_default());
        for member in members {
            out.push_str("<InstanceId>");
            let id = member.split('<').next().unwrap_or_default().to_owned();
            let born = *s
                .instances
                .entry(id.clone())
                .or_insert_with(|| s.mutated.get(&group).copied());
            s.instance_groups.insert(id, group.clone());
            let pending = rewrite && born.is_some_and(|at| now.duration_since(at) < launch);
            if pending {
                out.push_str(&member.replacen(
                    "<LifecycleState>InService</LifecycleState>",
                    "<LifecycleState>Pending</LifecycleState>",
                    1,
                ));
            } else {
                out.push_str(member);
            }
        }
    }
    with_body(&answer[..end], out.as_bytes())
}

/// Shows the targets of a DescribeTargetHealth answer that are instances launched
/// less than the model's launch and health check times ago as `initial`.
fn model_health(s: &mut State, answer: &[u8]) -> Vec<u8> {
    let Some(end) = find(answer, b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let Some(timing) = &s.timing else {
        return answer.to_vec();
    };
    let ready = timing.launch_pending + timing.health_initial;
    let body = String::from_utf8_lossy(&answer[end + 4..]).into_owned();
    let mut members = body.split("<member>");
    let mut out = members.next().unwrap_or_default().to_owned();
    for member in members {
        out.push_str("<member>");
        let young = member
            .split("<Id>")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .and_then(|id| s.instances.get(id).copied().flatten())
            .is_some_and(|born| born.elapsed() < ready);
        if young && member.contains("<State>healthy</State>") {
            s.held += 1;
            out.push_str(&member.replacen("<State>healthy</State>", "<State>initial</State>", 1));
        } else {
            out.push_str(member);
        }
    }
    with_body(&answer[..end], out.as_bytes())
}

/// `{"calls":{"Op":n},"injected":{"Op":n},...}`, for benchmark scripts.
fn stats_json(maps: &[(&str, &BTreeMap<String, u32>)]) -> String {
    let map = |m: &BTreeMap<String, u32>| {
        m.iter()
            .map(|(k, v)| format!("\"{}\":{v}", k.replace('"', "")))
            .collect::<Vec<_>>()
            .join(",")
    };
    let fields: Vec<String> = maps
        .iter()
        .map(|(name, m)| format!("\"{name}\":{{{}}}", map(m)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Whether the `n`th call falls in a `percent` share, spread evenly and starting
/// half a period in (10% hits calls 5, 15, 25, ...): a deterministic stand-in for
/// a rate that also touches short runs.
fn hits(n: u32, percent: u32) -> bool {
    let step = |k: u32| (u64::from(k) * u64::from(percent) + 50) / 100;
    n > 0 && step(n) > step(n - 1)
}

/// Reads one HTTP request (head and body, by its Content-Length) from `stream`.
pub fn read_message(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    read_request(stream)
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Ok(data);
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(data);
        }
        data.extend_from_slice(&buf[..n]);
    }
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

/// Replaces any Connection header with `Connection: close`.
fn with_connection_close(message: &[u8]) -> Vec<u8> {
    let Some(end) = find(message, b"\r\n\r\n") else {
        return message.to_vec();
    };
    let head = String::from_utf8_lossy(&message[..end]);
    let mut out: Vec<String> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(str::to_owned)
        .collect();
    out.push("Connection: close".to_owned());
    let mut bytes = out.join("\r\n").into_bytes();
    bytes.extend_from_slice(&message[end..]);
    bytes
}

/// The operation of a request: `Action=` of query APIs, named Route 53 calls.
fn operation(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    if let Some(action) = text
        .split(['&', '\n'])
        .find_map(|kv| kv.trim().strip_prefix("Action="))
    {
        return action.to_owned();
    }
    // JSON protocols: `X-Amz-Target: Service.Operation`.
    if let Some(target) = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-target").then(|| {
            value
                .trim()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    }) {
        return target;
    }
    let first = text.lines().next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = path.split('?').next().unwrap_or_default();
    match (method, path) {
        ("POST", p) if p.ends_with("/rrset") || p.ends_with("/rrset/") => {
            "ChangeResourceRecordSets"
        }
        ("GET", p) if p.ends_with("/rrset") => "ListResourceRecordSets",
        ("GET", p) if p.contains("/change/") => "GetChange",
        ("GET", p) if p.contains("/hostedzonesbyname") => "ListHostedZonesByName",
        ("GET", p) if p.contains("/healthcheck/") && p.ends_with("/status") => {
            "GetHealthCheckStatus"
        }
        ("GET", p) if p.contains("/healthcheck/") => "GetHealthCheck",
        ("GET", p) if p.contains("/hostedzone/") => "GetHostedZone",
        ("GET", p) if p.ends_with("/hostedzone") => "ListHostedZones",
        // S3, path-style: everything else is an object or a bucket.
        ("PUT", _) => "PutObject",
        ("DELETE", _) => "DeleteObject",
        ("GET", _) if first.contains("list-type=2") => "ListObjectsV2",
        ("GET", _) => "GetObject",
        _ => return format!("{method} {path}"),
    }
    .to_owned()
}
