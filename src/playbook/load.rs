//! From YAML text to a typed [`Playbook`], collecting every problem on the way.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::diagnostic::closest;
use super::diagnostic::{Diagnostic, Diagnostics};
use super::locate::{Pos, SourceMap};
use super::model::{Action, DEFAULT_MAX_INCREMENT, Notify, Playbook, STEP_KINDS, Window};
use super::params::{key_text, substitute};
use super::parts::{Partial, StepParts};
use super::path::YamlPath;
use super::types::{HumanDuration, Percent, StepId, check_name};
use super::validate;

/// The top-level fields of a playbook.
pub(crate) const TOP_LEVEL: [&str; 14] = [
    "version",
    "name",
    "description",
    "params",
    "accounts",
    "groups",
    "records",
    "stop_when",
    "max_increment",
    "capacity_margin",
    "rto",
    "window",
    "notify",
    "steps",
];

/// Why a playbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read playbook {file}: {source}")]
    Read {
        /// The file as named.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid playbook.
    #[error("{file}: {} problem(s) found", diagnostics.len())]
    Invalid {
        /// The file as named.
        file: String,
        /// Its text, for rendering source lines under the messages.
        text: String,
        /// Every problem found, in source order.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Reads and loads the playbook at `path`, with `vars` overriding its params.
pub fn load_file(path: &Path, vars: &BTreeMap<String, Value>) -> Result<Playbook, LoadError> {
    let text = read_playbook(path)?;
    load_str(&path.display().to_string(), &text, vars)
}

/// The largest playbook read: far above any real one (the fleet benchmark's, with
/// 250 records, is 40 KiB), and small enough that a wrong file cannot exhaust memory.
pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// Reads a playbook's text: only from a regular file (not a device, a pipe or a
/// folder), of at most [`MAX_PLAYBOOK_BYTES`], as UTF-8.
pub fn read_playbook(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    let file = path.display().to_string();
    let fail = |source| LoadError::Read {
        file: file.clone(),
        source,
    };
    let opened = std::fs::File::open(path).map_err(fail)?;
    let meta = opened.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(fail(std::io::Error::other(
            "not a regular file: give the path of a playbook file",
        )));
    }
    if meta.len() > MAX_PLAYBOOK_BYTES {
        return Err(fail(std::io::Error::other(format!(
            "{} bytes, more than the largest playbook read ({MAX_PLAYBOOK_BYTES} bytes)",
            meta.len()
        ))));
    }
    let mut text = String::new();
    opened
        .take(MAX_PLAYBOOK_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(fail)?;
    Ok(text)
}

/// Loads a playbook from `text`; `file` names it in diagnostics.
pub fn load_str(
    file: &str,
    text: &str,
    vars: &BTreeMap<String, Value>,
) -> Result<Playbook, LoadError> {
    // A byte-order mark is allowed at the start, and read past.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let early = super::locate::forbidden_character(text)
        .map(|(c, pos)| {
            (
                pos,
                format!(
                    "a control character ({}) that YAML does not allow in a file",
                    crate::text::one_line(&c.to_string())
                ),
                "remove it; inside double quotes, write it as an escape such as `\\0` or `\\e`",
            )
        })
        .or_else(|| super::locate::too_deep(text).map(|pos| (pos, too_deep(), TOO_DEEP_HELP)));
    if let Some((pos, message, help)) = early {
        // Nothing else is read of such a text: no parser is given it.
        let map = SourceMap::default();
        let mut diags = Diagnostics::new(file, &map);
        diags
            .error_at(&YamlPath::root(), Some(pos), message)
            .help(help);
        return Err(LoadError::Invalid {
            file: file.to_owned(),
            text: text.to_owned(),
            diagnostics: diags.into_sorted(),
        });
    }
    let map = SourceMap::build(text);
    let mut diags = Diagnostics::new(file, &map);
    let playbook = load_inner(text, vars, &map, &mut diags);
    match playbook {
        Some(playbook) if diags.is_empty() => Ok(playbook),
        _ => Err(LoadError::Invalid {
            file: file.to_owned(),
            text: text.to_owned(),
            diagnostics: diags.into_sorted(),
        }),
    }
}

/// Said of a text nested past [`super::locate::MAX_NESTING`], whether the one-pass
/// scan or the parser found it.
fn too_deep() -> String {
    format!(
        "nested more than {} levels deep",
        super::locate::MAX_NESTING
    )
}

const TOO_DEEP_HELP: &str =
    "a playbook's lists and mappings nest a few levels; look for brackets left open";

fn load_inner(
    text: &str,
    vars: &BTreeMap<String, Value>,
    map: &SourceMap,
    diags: &mut Diagnostics<'_>,
) -> Option<Playbook> {
    for dup in &map.duplicates {
        diags
            .error_at(&dup.path, Some(dup.pos), "duplicate key")
            .related(dup.first, "first set here")
            .help(format!(
                "it is first set at line {}, column {}; keep one",
                dup.first.line, dup.first.column
            ));
    }
    if let Some(pos) = map.too_deep {
        diags
            .error_at(&YamlPath::root(), Some(pos), too_deep())
            .help(TOO_DEEP_HELP);
        return None;
    }
    for (tag, pos) in &map.tags {
        diags
            .error_at(
                &YamlPath::root(),
                Some(*pos),
                format!("unknown YAML tag `{}`", crate::text::one_line(tag)),
            )
            .help("playbooks use plain YAML: remove the tag");
    }
    if !map.tags.is_empty() {
        return None;
    }
    let root: Value = match serde_yaml::from_str(text) {
        Ok(root) => root,
        Err(err) => {
            if map.duplicates.is_empty() {
                report_syntax_error(&err, text, map, diags);
            }
            return None;
        }
    };
    let root = match root {
        Value::Mapping(m) => m,
        Value::Null => {
            diags
                .error(&YamlPath::root(), "the playbook is empty")
                .help("start from an example in playbooks/");
            return None;
        }
        _ => {
            diags
                .error(&YamlPath::root(), "a playbook must be a mapping")
                .help("it starts with `version: 1`, `name:` and `steps:`");
            return None;
        }
    };
    let root_path = YamlPath::root();
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    for (key, value) in root {
        let name = key_text(&key);
        if TOP_LEVEL.contains(&name.as_str()) {
            fields.insert(name, value);
        } else {
            unknown_field(diags, &root_path.key(&name), &name, &TOP_LEVEL);
        }
    }
    for required in ["version", "name", "steps"] {
        if !fields.contains_key(required) {
            diags.error(&root_path, format!("missing field `{required}`"));
        }
    }

    let params = load_params(fields.remove("params"), vars, diags);
    // What substitution writes counts against the largest playbook read: a long
    // parameter used many times cannot grow the playbook without bound.
    let mut budget = usize::try_from(MAX_PLAYBOOK_BYTES).unwrap_or(usize::MAX);
    for (name, value) in fields.iter_mut() {
        substitute(value, &root_path.key(name), &params, &mut budget, diags);
    }

    let version: Option<u32> = fields
        .get("version")
        .and_then(|v| decode(v, &root_path.key("version"), diags));
    if let Some(version) = version
        && version != 1
    {
        diags
            .error(
                &root_path.key("version"),
                format!("unsupported playbook version {version}"),
            )
            .help("this evac reads version 1");
    }
    let name: Option<String> = fields
        .get("name")
        .and_then(|v| decode(v, &root_path.key("name"), diags));
    if let Some(name) = &name
        && let Err(message) = check_name("playbook name", name)
    {
        diags.error(&root_path.key("name"), message);
    }
    let description: Option<String> = match fields.get("description") {
        Some(v) => decode(v, &root_path.key("description"), diags),
        None => None,
    };
    let accounts_value = fields.get("accounts");
    let accounts = decode_named(
        accounts_value,
        &root_path.key("accounts"),
        "account name",
        diags,
    );
    let groups_value = fields.get("groups");
    let records_value = fields.get("records");
    let groups = decode_named(groups_value, &root_path.key("groups"), "group name", diags);
    let records = decode_named(
        records_value,
        &root_path.key("records"),
        "record name",
        diags,
    );
    let stop_when = match fields.get("stop_when") {
        Some(value) => decode_list(value, &root_path.key("stop_when"), diags, |v, p, d| {
            decode(v, p, d)
        }),
        None => Vec::new(),
    };
    let max_increment: Option<Percent> = match fields.get("max_increment") {
        Some(v) => decode(v, &root_path.key("max_increment"), diags),
        None => Some(Percent(DEFAULT_MAX_INCREMENT)),
    };
    let capacity_margin: Option<u16> = match fields.get("capacity_margin") {
        Some(v) => decode(v, &root_path.key("capacity_margin"), diags),
        None => Some(0),
    };
    let rto: Option<Option<HumanDuration>> = match fields.get("rto") {
        Some(v) => decode::<HumanDuration>(v, &root_path.key("rto"), diags).map(Some),
        None => Some(None),
    };
    let window: Option<Window> = match fields.get("window") {
        Some(v) => {
            let window = decode::<Window>(v, &root_path.key("window"), diags);
            if let Some(w) = &window {
                super::window::check(w, &root_path.key("window"), diags);
            }
            window
        }
        None => None,
    };
    let notify: Option<Notify> = match fields.get("notify") {
        Some(v) => {
            let notify = decode::<Notify>(v, &root_path.key("notify"), diags);
            if let Some(n) = &notify {
                validate::check_notify(n, &root_path.key("notify"), diags);
            }
            notify
        }
        None => None,
    };
    let steps = match fields.get("steps") {
        Some(value) => decode_list(value, &root_path.key("steps"), diags, decode_step),
        None => Vec::new(),
    };

    // Check what did decode, so that one bad step does not hide the problems of the
    // others. Names whose definitions failed to decode still count as declared, so
    // they are not reported a second time as undefined.
    let parts = validate::Parts {
        accounts: &accounts,
        declared_accounts: declared(accounts_value),
        groups: &groups,
        records: &records,
        stop_when: &stop_when,
        declared_groups: declared(groups_value),
        declared_records: declared(records_value),
        steps: &steps,
        steps_present: fields.contains_key("steps"),
        max_increment: max_increment
            .map_or(i64::from(DEFAULT_MAX_INCREMENT), |p| i64::from(p.get())),
    };
    validate::check(&parts, diags);
    if !diags.is_empty() {
        return None;
    }
    Some(Playbook {
        version: version?,
        name: name?,
        description,
        params,
        accounts,
        groups,
        records,
        stop_when: stop_when.into_iter().map(|(_, c)| c).collect(),
        max_increment: max_increment?,
        capacity_margin: capacity_margin?,
        rto: rto?,
        window,
        notify,
        steps: steps
            .into_iter()
            .map(|(_, s)| s.into_step())
            .collect::<Option<Vec<_>>>()?,
    })
}

/// The keys of a mapping, whatever their values.
fn declared(value: Option<&Value>) -> std::collections::BTreeSet<String> {
    match value {
        Some(Value::Mapping(map)) => map.keys().map(key_text).collect(),
        _ => Default::default(),
    }
}

/// Reports a serde_yaml parse error at its position, with the path of the last node
/// before it.
fn report_syntax_error(
    err: &serde_yaml::Error,
    text: &str,
    map: &SourceMap,
    diags: &mut Diagnostics<'_>,
) {
    let pos = err.location().map(|l| Pos {
        line: l.line(),
        column: l.column(),
    });
    let at = pos.and_then(|p| {
        text.lines()
            .nth(p.line.checked_sub(1)?)?
            .chars()
            .nth(p.column.checked_sub(1)?)
    });
    if let Some(p) = pos
        && at == Some('\t')
    {
        diags
            .error_at(
                &YamlPath::root(),
                Some(p),
                "a tab, which YAML does not allow for indentation",
            )
            .help("indent with spaces");
        return;
    }
    let mut message = err.to_string();
    if let Some(p) = pos {
        // serde_yaml repeats the position in its message; the headline already has it.
        message = message.replacen(&format!(" at line {} column {}", p.line, p.column), "", 1);
    }
    let path = pos.map(|p| map.path_before(p)).unwrap_or_default();
    diags.error_at(&path, pos, format!("invalid YAML: {message}"));
}

fn load_params(
    value: Option<Value>,
    vars: &BTreeMap<String, Value>,
    diags: &mut Diagnostics<'_>,
) -> BTreeMap<String, Value> {
    let path = YamlPath::root().key("params");
    let mut params = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(map)) => {
            for (key, value) in map {
                let name = key_text(&key);
                let item = path.key(&name);
                if !name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    diags.error_at_key(
                        &item,
                        format!("invalid parameter name `{name}`: use letters, digits and `_`"),
                    );
                    continue;
                }
                match value {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                        params.insert(name, value);
                    }
                    _ => {
                        diags.error(
                            &item,
                            format!("parameter `{name}` must be a string, number or boolean"),
                        );
                    }
                }
            }
        }
        Some(_) => {
            diags.error(&path, "`params` must be a mapping of names to values");
        }
    }
    for (name, value) in vars {
        if params.contains_key(name) {
            params.insert(name.clone(), value.clone());
            let shown = match value {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            diags.set_by(
                name,
                format!(
                    "{name}={} on the command line",
                    crate::text::one_line(&shown)
                ),
            );
        } else {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            diags
                .error(
                    &path,
                    format!("--var {name} sets a parameter the playbook does not declare"),
                )
                .help(if known.is_empty() {
                    "this playbook declares no params".to_owned()
                } else {
                    format!("declared params: {}", known.join(", "))
                });
        }
    }
    params
}

/// Decodes one value into `T`, reporting every problem inside it with its path.
fn decode<T: DeserializeOwned>(
    value: &Value,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) -> Option<T> {
    decode_partial(value, path, diags)
        .filter(|d| d.removed.is_empty())
        .map(|d| d.value)
}

/// Decodes `value` into `T`. serde stops at the first problem; to report the others
/// in the same pass, the field holding it is left out and decoding is tried again,
/// until it succeeds or a left-out field turns out to be required.
fn decode_partial<T: DeserializeOwned>(
    value: &Value,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) -> Option<Partial<T>> {
    let mut value = value.clone();
    let mut removed: Vec<YamlPath> = Vec::new();
    let mut removed_keys: Vec<String> = Vec::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(decoded) => {
                return Some(Partial {
                    value: decoded,
                    removed,
                });
            }
            Err(err) => err,
        };
        let relative = YamlPath::from_serde(err.path());
        let message = err.inner().to_string();
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            && removed_keys.iter().any(|k| k == missing)
        {
            // An artefact of leaving the field out: its own problem is reported.
            return None;
        }
        if !removed.is_empty()
            && relative.segments().is_empty()
            && !message.starts_with("missing field")
        {
            // A whole-value check (a stop condition is exactly one of ...) failing
            // only because a field with a problem of its own was left out.
            return None;
        }
        report_decode_error(&path.join(&relative), &message, diags);
        let first_key = match relative.segments().first() {
            Some(super::path::Segment::Key(key)) => key.clone(),
            _ => return None,
        };
        let Value::Mapping(map) = &mut value else {
            return None;
        };
        if map.remove(Value::String(first_key.clone())).is_none() || removed.len() >= 32 {
            return None;
        }
        removed.push(path.key(&first_key));
        removed_keys.push(first_key);
    }
}

fn report_decode_error(full: &YamlPath, message: &str, diags: &mut Diagnostics<'_>) {
    if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        let (got, expected) = parse_unknown(message);
        let diag = if message.starts_with("unknown field") {
            diags.error_at_key(full, message)
        } else {
            diags.bad_value(full, message)
        };
        if let Some(guess) = closest(&got, expected.iter().map(String::as_str)) {
            diag.help(format!("did you mean `{guess}`?"));
        }
    } else {
        diags.bad_value(full, message);
    }
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into `x` and `[a, b]`.
fn parse_unknown(message: &str) -> (String, Vec<String>) {
    let ticks: Vec<&str> = message.split('`').collect();
    let got = ticks.get(1).map(|s| (*s).to_owned()).unwrap_or_default();
    let expected = ticks
        .iter()
        .skip(3)
        .step_by(2)
        .map(|s| (*s).to_owned())
        .collect();
    (got, expected)
}

fn unknown_field(diags: &mut Diagnostics<'_>, path: &YamlPath, got: &str, expected: &[&str]) {
    let listed: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    let diag = diags.error_at_key(
        path,
        format!(
            "unknown field `{got}`, expected one of {}",
            listed.join(", ")
        ),
    );
    if let Some(guess) = closest(got, expected.iter().copied()) {
        diag.help(format!("did you mean `{guess}`?"));
    }
}

/// Decodes a mapping of names to `T` (groups, records), checking each name.
fn decode_named<T: DeserializeOwned>(
    value: Option<&Value>,
    path: &YamlPath,
    kind: &str,
    diags: &mut Diagnostics<'_>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(map)) => {
            for (key, value) in map {
                let name = key_text(key);
                let item = path.key(&name);
                if let Err(message) = check_name(kind, &name) {
                    diags.error_at_key(&item, message);
                }
                if let Some(decoded) = decode(value, &item, diags) {
                    out.insert(name, decoded);
                }
            }
        }
        Some(_) => {
            diags.error(
                path,
                format!("expected a mapping of {kind}s to their definitions"),
            );
        }
    }
    out
}

/// Decodes each item of a list, keeping the index of each that decoded.
fn decode_list<T>(
    value: &Value,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
    mut each: impl FnMut(&Value, &YamlPath, &mut Diagnostics<'_>) -> Option<T>,
) -> Vec<(usize, T)> {
    match value {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| each(item, &path.index(i), diags).map(|t| (i, t)))
            .collect(),
        _ => {
            diags.error(path, "expected a list");
            Vec::new()
        }
    }
}

/// Decodes one step: a mapping with `id`, an optional `description` and exactly one
/// step-kind key.
fn decode_step(value: &Value, path: &YamlPath, diags: &mut Diagnostics<'_>) -> Option<StepParts> {
    let Value::Mapping(map) = value else {
        diags
            .error(path, "a step must be a mapping")
            .help("write `- id: NAME` followed by one step kind, such as `scale_up:`");
        return None;
    };
    let mut id = None;
    let mut description = None;
    let mut kinds: Vec<(String, &Value)> = Vec::new();
    let mut complete = true;
    for (key, item) in map {
        let name = key_text(key);
        match name.as_str() {
            "id" => {
                id = decode::<StepId>(item, &path.key("id"), diags);
                complete &= id.is_some();
            }
            "description" => {
                description = decode::<String>(item, &path.key("description"), diags);
                complete &= description.is_some();
            }
            kind if STEP_KINDS.contains(&kind) => kinds.push((name.clone(), item)),
            _ => {
                let mut expected = vec!["id", "description"];
                expected.extend(STEP_KINDS);
                unknown_field(diags, &path.key(&name), &name, &expected);
                complete = false;
            }
        }
    }
    if !map_has(map, "id") {
        diags
            .error(path, "missing field `id`")
            .help("every step needs a stable id, such as `id: scale-target`");
        complete = false;
    }
    let action = match kinds.as_slice() {
        [] => {
            if complete {
                diags
                    .error(path, "the step has no kind")
                    .help(format!("add one of: {}", STEP_KINDS.join(", ")));
            }
            complete = false;
            None
        }
        [(kind, body)] => decode_action(kind, body, &path.key(kind), diags),
        [_, (second, _), ..] => {
            let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
            diags
                .error_at_key(
                    &path.key(second),
                    format!(
                        "a step has exactly one kind, this one has {}",
                        names.join(" and ")
                    ),
                )
                .help("split it into one step per kind");
            complete = false;
            None
        }
    };
    Some(StepParts {
        id,
        description,
        action,
        complete,
    })
}

fn map_has(map: &Mapping, key: &str) -> bool {
    map.contains_key(Value::String(key.to_owned()))
}

fn decode_action(
    kind: &str,
    body: &Value,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) -> Option<Partial<Action>> {
    fn wrap<T>(p: Option<Partial<T>>, f: impl FnOnce(T) -> Action) -> Option<Partial<Action>> {
        p.map(|p| Partial {
            value: f(p.value),
            removed: p.removed,
        })
    }
    match kind {
        "scale_up" => wrap(decode_partial(body, path, diags), Action::ScaleUp),
        "shift_traffic" => wrap(decode_partial(body, path, diags), Action::ShiftTraffic),
        "drain" => wrap(decode_partial(body, path, diags), Action::Drain),
        "wait" => wrap(
            decode_partial::<HumanDuration>(body, path, diags),
            Action::Wait,
        ),
        "approve" => wrap(decode_partial(body, path, diags), Action::Approve),
        "check" => wrap(decode_partial(body, path, diags), Action::Check),
        "evacuate_zone" => wrap(decode_partial(body, path, diags), Action::EvacuateZone),
        _ => None,
    }
}
