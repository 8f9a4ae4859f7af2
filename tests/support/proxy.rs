//! A fault-injecting HTTP proxy between evac and the emulator. Per operation it
//! answers with throttling or 5xx errors (every Nth call, or a share of calls),
//! adds latency, or drops the connection; it counts every call by operation.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer 400 Throttling.
    Throttle,
    /// Answer 503 ServiceUnavailable.
    ServerError,
    /// Forward after a delay.
    Latency(Duration),
    /// Close the connection without an answer.
    Drop,
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
}

impl Rule {
    /// A fault on `percent`% of the calls of `operation` (`*` for all).
    pub fn rate(operation: &str, fault: Fault, percent: u32) -> Self {
        Rule {
            operation: operation.to_owned(),
            fault,
            percent,
            nth: None,
        }
    }

    /// A fault on the `n`th call of `operation` only.
    pub fn nth(operation: &str, fault: Fault, n: u32) -> Self {
        Rule {
            operation: operation.to_owned(),
            fault,
            percent: 0,
            nth: Some(n),
        }
    }

    fn applies(&self, operation: &str, n: u32) -> bool {
        (self.operation == "*" || self.operation == operation)
            && match self.nth {
                Some(k) => n == k,
                None => hits(n, self.percent),
            }
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    calls: BTreeMap<String, u32>,
    injected: BTreeMap<String, u32>,
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
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let state = Arc::new(Mutex::new(State {
            rules,
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
}

/// One request per connection: read it, maybe fault it, else forward it and relay
/// the answer with `Connection: close`.
fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let request = read_request(&mut client)?;
    if request.starts_with(b"GET /__proxy/stats") {
        let body = {
            let s = state
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            stats_json(&s.calls, &s.injected)
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return client.write_all(answer.as_bytes());
    }
    let operation = operation(&request);
    let fault = {
        let mut s = state
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let n = {
            let count = s.calls.entry(operation.clone()).or_default();
            *count += 1;
            *count
        };
        let fault = s
            .rules
            .iter()
            .find(|r| r.applies(&operation, n))
            .map(|r| r.fault);
        if fault.is_some() {
            *s.injected.entry(operation.clone()).or_default() += 1;
        }
        fault
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
    match fault {
        Some(Fault::Throttle) => {
            return client.write_all(error("400 Bad Request", "Throttling").as_bytes());
        }
        Some(Fault::ServerError) => {
            return client
                .write_all(error("503 Service Unavailable", "ServiceUnavailable").as_bytes());
        }
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Latency(d)) => std::thread::sleep(d),
        None => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&with_connection_close(&request))?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    client.write_all(&with_connection_close(&answer))
}

/// `{"calls":{"Op":n},"injected":{"Op":n}}`, for benchmark scripts.
fn stats_json(calls: &BTreeMap<String, u32>, injected: &BTreeMap<String, u32>) -> String {
    let map = |m: &BTreeMap<String, u32>| {
        m.iter()
            .map(|(k, v)| format!("\"{}\":{v}", k.replace('"', "")))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{{\"calls\":{{{}}},\"injected\":{{{}}}}}",
        map(calls),
        map(injected)
    )
}

/// Whether the `n`th call falls in a `percent` share, spread evenly and starting
/// half a period in (10% hits calls 5, 15, 25, ...): a deterministic stand-in for
/// a rate that also touches short runs.
fn hits(n: u32, percent: u32) -> bool {
    let step = |k: u32| (u64::from(k) * u64::from(percent) + 50) / 100;
    n > 0 && step(n) > step(n - 1)
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
        ("GET", p) if p.contains("/healthcheck/") => "GetHealthCheck",
        ("GET", p) if p.contains("/hostedzone/") => "GetHostedZone",
        ("GET", p) if p.ends_with("/hostedzone") => "ListHostedZones",
        _ => return format!("{method} {path}"),
    }
    .to_owned()
}
