//! A fake ARC zonal shift service speaking the real REST-JSON protocol, for the
//! tests (the emulator has no ARC) and the timing benchmark. evac reaches it through
//! `AWS_ENDPOINT_URL_ARC_ZONAL_SHIFT`.
//!
//! It serves StartZonalShift (`POST /zonalshifts`), ListZonalShifts
//! (`GET /zonalshifts`), UpdateZonalShift (`PATCH /zonalshifts/{id}`),
//! CancelZonalShift (`DELETE /zonalshifts/{id}`) and GetManagedResource
//! (`GET /managedresources/{arn}`). Resources are the ones added with
//! [`FakeArc::add_resource`] (or, with [`FakeArc::any_load_balancer`], every load
//! balancer ARN); a shift is `NOT_APPLIED` for the fake's delay after it starts,
//! then `APPLIED`; it expires by itself at its expiry time. ARC's rule of one active
//! shift per resource is kept (`ConflictException`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// A shift as the fake keeps it.
#[derive(Clone, Debug)]
pub struct FakeShift {
    pub id: String,
    pub resource: String,
    pub away_from: String,
    pub comment: String,
    /// Seconds since the epoch.
    pub start: f64,
    /// Seconds since the epoch.
    pub expiry: f64,
    /// `ACTIVE`, `EXPIRED` or `CANCELED`.
    pub status: String,
    started: Instant,
}

/// One call the fake answered: its operation and when it arrived.
#[derive(Clone, Debug)]
pub struct ArcCall {
    pub operation: String,
    /// The resource it names (a shift's, for calls that name a shift).
    pub resource: String,
    pub at: SystemTime,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<String, (String, Vec<String>)>,
    any_load_balancer: bool,
    shifts: Vec<FakeShift>,
    next: u32,
    delay: Duration,
    calls: Vec<ArcCall>,
}

/// The running fake.
pub struct FakeArc {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl FakeArc {
    /// Starts the fake on a free port of 127.0.0.1; shifts apply after `delay`.
    pub fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake ARC");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State {
            delay,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &state);
                });
            }
        });
        FakeArc { url, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `arn` a managed resource named `name` in the zones `zone_ids`.
    pub fn add_resource(&self, arn: &str, name: &str, zone_ids: &[&str]) {
        self.state().resources.insert(
            arn.to_owned(),
            (
                name.to_owned(),
                zone_ids.iter().map(|z| (*z).to_owned()).collect(),
            ),
        );
    }

    /// Makes every load balancer ARN a managed resource.
    pub fn any_load_balancer(&self) {
        self.state().any_load_balancer = true;
    }

    /// Every shift so far, oldest first.
    pub fn shifts(&self) -> Vec<FakeShift> {
        let mut state = self.state();
        expire(&mut state);
        state.shifts.clone()
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<ArcCall> {
        self.state().calls.clone()
    }

    /// Someone else starts a shift (as the AWS console would).
    pub fn start_shift(
        &self,
        resource: &str,
        away_from: &str,
        comment: &str,
        minutes: u64,
    ) -> String {
        let mut state = self.state();
        start(
            &mut state,
            resource,
            away_from,
            comment,
            minutes as f64 * 60.0,
        )
    }

    /// Sets when a shift expires (seconds since the epoch).
    pub fn set_expiry(&self, id: &str, at: f64) {
        if let Some(s) = self.state().shifts.iter_mut().find(|s| s.id == id) {
            s.expiry = at;
        }
    }
}

fn start(state: &mut State, resource: &str, away_from: &str, comment: &str, secs: f64) -> String {
    state.next += 1;
    let id = format!("{:08x}-0000-4000-8000-{:012x}", state.next, state.next);
    let at = now();
    state.shifts.push(FakeShift {
        id: id.clone(),
        resource: resource.to_owned(),
        away_from: away_from.to_owned(),
        comment: comment.to_owned(),
        start: at,
        expiry: at + secs,
        status: "ACTIVE".to_owned(),
        started: Instant::now(),
    });
    id
}

fn expire(state: &mut State) {
    let at = now();
    for s in &mut state.shifts {
        if s.status == "ACTIVE" && s.expiry <= at {
            s.status = "EXPIRED".to_owned();
        }
    }
}

fn managed(state: &State, arn: &str) -> Option<(String, Vec<String>)> {
    if let Some(found) = state.resources.get(arn) {
        return Some(found.clone());
    }
    let lb = arn.starts_with("arn:aws:elasticloadbalancing:")
        && (arn.contains(":loadbalancer/app/") || arn.contains(":loadbalancer/net/"));
    (state.any_load_balancer && lb).then(|| {
        let name = arn
            .rsplit(":loadbalancer/")
            .next()
            .unwrap_or(arn)
            .to_owned();
        (name, Vec::new())
    })
}

/// `30m`, `2h` as seconds.
fn expires_in(text: &str) -> Option<f64> {
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: f64 = n.parse().ok()?;
    match unit {
        "m" if (1.0..=4320.0).contains(&n) => Some(n * 60.0),
        "h" if (1.0..=72.0).contains(&n) => Some(n * 3600.0),
        _ => None,
    }
}

fn shift_json(s: &FakeShift) -> Value {
    json!({
        "zonalShiftId": s.id,
        "resourceIdentifier": s.resource,
        "awayFrom": s.away_from,
        "expiryTime": s.expiry,
        "startTime": s.start,
        "status": s.status,
        "comment": s.comment,
        "shiftType": "ZONAL_SHIFT",
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Answer = (u16, Option<&'static str>, Value);

fn error(status: u16, kind: &'static str, message: String) -> Answer {
    (status, Some(kind), json!({ "message": message }))
}

/// The active shift `id`, or ARC's answer when there is none: 404 for an unknown
/// id, 409 for one that expired or was cancelled.
fn active<'s>(state: &'s mut State, id: &str) -> Result<&'s mut FakeShift, Answer> {
    match state.shifts.iter_mut().find(|s| s.id == id) {
        None => Err(error(
            404,
            "ResourceNotFoundException",
            format!("no zonal shift {id}"),
        )),
        Some(s) if s.status != "ACTIVE" => Err(error(
            409,
            "ConflictException",
            format!("zonal shift {id} is {}", s.status),
        )),
        Some(s) => Ok(s),
    }
}

fn handle(
    state: &Mutex<State>,
    method: &str,
    target: &str,
    body: &[u8],
) -> (String, String, Answer) {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    expire(&mut state);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let resource = match segments.as_slice() {
        ["managedresources", arn] => decode(arn),
        ["zonalshifts", id] => {
            let id = decode(id);
            state
                .shifts
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.resource.clone())
                .unwrap_or_default()
        }
        _ => body
            .get("resourceIdentifier")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| query.get("resourceIdentifier").cloned())
            .unwrap_or_default(),
    };
    let (operation, answer) = match (method, segments.as_slice()) {
        ("POST", ["zonalshifts"]) => {
            let resource = text("resourceIdentifier");
            let answer = if managed(&state, &resource).is_none() {
                error(
                    404,
                    "ResourceNotFoundException",
                    format!("{resource} is not a managed resource"),
                )
            } else if let Some(other) = state
                .shifts
                .iter()
                .find(|s| s.resource == resource && s.status == "ACTIVE")
            {
                error(
                    409,
                    "ConflictException",
                    format!("zonal shift {} is already active on {resource}", other.id),
                )
            } else {
                match expires_in(&text("expiresIn")) {
                    None => error(400, "ValidationException", "invalid expiresIn".to_owned()),
                    Some(secs) => {
                        let id = start(
                            &mut state,
                            &resource,
                            &text("awayFrom"),
                            &text("comment"),
                            secs,
                        );
                        let s = state.shifts.iter().find(|s| s.id == id).cloned();
                        (200, None, s.as_ref().map_or(Value::Null, shift_json))
                    }
                }
            };
            ("StartZonalShift".to_owned(), answer)
        }
        ("GET", ["zonalshifts"]) => {
            let items: Vec<Value> = state
                .shifts
                .iter()
                .filter(|s| {
                    query
                        .get("resourceIdentifier")
                        .is_none_or(|r| *r == s.resource)
                })
                .filter(|s| query.get("status").is_none_or(|st| *st == s.status))
                .map(shift_json)
                .collect();
            (
                "ListZonalShifts".to_owned(),
                (200, None, json!({ "items": items })),
            )
        }
        ("PATCH", ["zonalshifts", id]) => {
            let secs = body
                .get("expiresIn")
                .and_then(Value::as_str)
                .map(expires_in);
            let answer = match active(&mut state, &decode(id)) {
                Err(answer) => answer,
                Ok(_) if secs == Some(None) => {
                    error(400, "ValidationException", "invalid expiresIn".to_owned())
                }
                Ok(s) => {
                    if let Some(Some(secs)) = secs {
                        s.expiry = now() + secs;
                    }
                    if let Some(c) = body.get("comment").and_then(Value::as_str) {
                        s.comment = c.to_owned();
                    }
                    (200, None, shift_json(s))
                }
            };
            ("UpdateZonalShift".to_owned(), answer)
        }
        ("DELETE", ["zonalshifts", id]) => {
            let answer = match active(&mut state, &decode(id)) {
                Err(answer) => answer,
                Ok(s) => {
                    s.status = "CANCELED".to_owned();
                    (200, None, shift_json(s))
                }
            };
            ("CancelZonalShift".to_owned(), answer)
        }
        ("GET", ["managedresources", arn]) => {
            let arn = decode(arn);
            let answer = match managed(&state, &arn) {
                None => error(
                    404,
                    "ResourceNotFoundException",
                    format!("{arn} is not a managed resource"),
                ),
                Some((name, zones)) => {
                    let active: Vec<&FakeShift> = state
                        .shifts
                        .iter()
                        .filter(|s| s.resource == arn && s.status == "ACTIVE")
                        .collect();
                    let applied = |s: &FakeShift| s.started.elapsed() >= state.delay;
                    let weights: serde_json::Map<String, Value> = zones
                        .iter()
                        .map(|z| {
                            let away = active.iter().any(|s| s.away_from == *z && applied(s));
                            (z.clone(), json!(if away { 0.0 } else { 1.0 }))
                        })
                        .collect();
                    let shifts: Vec<Value> = active
                        .iter()
                        .map(|s| {
                            let mut v = shift_json(s);
                            if let Some(o) = v.as_object_mut() {
                                o.remove("status");
                                o.insert(
                                    "appliedStatus".into(),
                                    json!(if applied(s) { "APPLIED" } else { "NOT_APPLIED" }),
                                );
                            }
                            v
                        })
                        .collect();
                    (
                        200,
                        None,
                        json!({
                            "arn": arn,
                            "name": name,
                            "appliedWeights": weights,
                            "zonalShifts": shifts,
                            "autoshifts": [],
                            "zonalAutoshiftStatus": "DISABLED",
                        }),
                    )
                }
            };
            ("GetManagedResource".to_owned(), answer)
        }
        _ => (
            format!("{method} {path}"),
            error(
                404,
                "UnknownOperationException",
                format!("no operation at {method} {path}"),
            ),
        ),
    };
    (operation, resource, answer)
}

fn serve(mut client: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let request = super::proxy::read_message(&mut client)?;
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&request[..end]).into_owned();
    let body = &request[end + 4..];
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let (operation, resource, (status, kind, answer)) = handle(state, method, target, body);
    state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .calls
        .push(ArcCall {
            operation,
            resource,
            at: SystemTime::now(),
        });
    let body = answer.to_string();
    let reason = if status == 200 { "OK" } else { "Error" };
    let error_type = kind
        .map(|k| format!("x-amzn-ErrorType: {k}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{error_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes())?;
    client.flush()
}
