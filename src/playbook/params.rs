//! `{{ name }}` substitution of playbook parameters.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::diagnostic::Diagnostics;
use super::path::YamlPath;

/// Parses a `--var NAME=VALUE` argument. The value is read as a YAML scalar, so
/// `--var to=0` gives a number and `--var target=us-east-1` a string.
pub fn parse_var(arg: &str) -> Result<(String, Value), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("invalid --var `{arg}`: write it as NAME=VALUE"))?;
    let name = name.trim();
    if !is_identifier(name) {
        return Err(format!(
            "invalid --var `{arg}`: `{name}` is not a parameter name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    let parsed = match serde_yaml::from_str::<Value>(value) {
        Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::String(_))) => v,
        _ => Value::String(value.to_owned()),
    };
    Ok((name.to_owned(), parsed))
}

/// The parameters of a `--var-file`: a YAML mapping of parameter names to
/// strings, numbers or booleans, read whole (at most 1 MiB, a regular file).
pub fn parse_var_file(path: &str) -> Result<Vec<(String, Value)>, String> {
    let text = super::read_playbook(std::path::Path::new(path))
        .map_err(|e| format!("cannot read --var-file {path}: {e}"))?;
    let map: serde_yaml::Mapping = serde_yaml::from_str(&text).map_err(|e| {
        format!("--var-file {path} is not a YAML mapping of `NAME: VALUE` lines: {e}")
    })?;
    let mut out = Vec::new();
    for (key, value) in map {
        let Value::String(name) = key else {
            return Err(format!(
                "--var-file {path}: a key is not a parameter name: write `NAME: VALUE` lines"
            ));
        };
        if !is_identifier(&name) {
            return Err(format!(
                "--var-file {path}: `{name}` is not a parameter name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        match value {
            v @ (Value::Bool(_) | Value::Number(_) | Value::String(_)) => out.push((name, v)),
            _ => {
                return Err(format!(
                    "--var-file {path}: `{name}` is not a string, a number or true/false"
                ));
            }
        }
    }
    Ok(out)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces every `{{ name }}` in the string scalars of `value` (in place). A string
/// that is exactly one placeholder takes the parameter's value with its type, so
/// `to: "{{ drain_to }}"` can be a number. Problems are reported with their path.
///
/// `budget` is how many more bytes substitution may write in all (the largest
/// playbook read); past it, substitution stops with one error at the place it ran
/// out, so a long parameter used many times cannot exhaust memory.
pub fn substitute(
    value: &mut Value,
    path: &YamlPath,
    params: &BTreeMap<String, Value>,
    budget: &mut usize,
    diags: &mut Diagnostics<'_>,
) {
    match value {
        Value::String(text) => {
            if let Some(replacement) = substitute_str(text, path, params, budget, diags) {
                *value = replacement;
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &path.index(i), params, budget, diags);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = key_text(key);
                substitute(item, &path.key(key), params, budget, diags);
            }
        }
        Value::Tagged(tagged) => substitute(&mut tagged.value, path, params, budget, diags),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The budget's error, said once: at the first place that ran out.
const SPENT: usize = usize::MAX;

/// The text of a mapping key, for paths.
pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        _ => "<complex key>".to_owned(),
    }
}

/// Substitutes one string. Returns the new value, or `None` when it has no placeholder
/// or a placeholder could not be resolved (which is reported).
fn substitute_str(
    text: &str,
    path: &YamlPath,
    params: &BTreeMap<String, Value>,
    budget: &mut usize,
    diags: &mut Diagnostics<'_>,
) -> Option<Value> {
    if !text.contains("{{") || *budget == SPENT {
        return None;
    }
    let mut out = String::new();
    let mut rest = text;
    let mut whole: Option<Value> = None;
    let mut failed = false;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            diags
                .error(path, format!("unterminated placeholder in `{text}`"))
                .help("close it with `}}`, as in `{{ target }}`");
            diags.mute(path);
            return None;
        };
        let name = after[..end].trim();
        if !is_identifier(name) {
            diags
                .error(
                    path,
                    format!(
                        "malformed placeholder `{{{{{}}}}}` in `{text}`",
                        &after[..end]
                    ),
                )
                .help("a placeholder holds one parameter name, as in `{{ target }}`");
            failed = true;
        } else if let Some(param) = params.get(name) {
            let text_of = scalar_text(param);
            if text_of.len() > *budget {
                diags
                    .error(
                        path,
                        format!(
                            "substituting parameters makes the playbook larger than {} bytes, the largest playbook read",
                            super::MAX_PLAYBOOK_BYTES
                        ),
                    )
                    .help(format!(
                        "parameter `{name}` ({} bytes) is used too often or is too long: shorten it, or use it in fewer places",
                        text_of.len()
                    ));
                diags.mute(path);
                *budget = SPENT;
                return None;
            }
            *budget -= text_of.len();
            if start == 0 && after[end + 2..].is_empty() && out.is_empty() {
                whole = Some(param.clone());
                diags.is_param(path, name);
            }
            out.push_str(&text_of);
        } else {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            let help = if known.is_empty() {
                format!(
                    "declare it under `params:` (for example `params: {{ {name}: ... }}`) or pass --var {name}=VALUE"
                )
            } else {
                format!(
                    "declared params: {}; declare it under `params:` or fix the name",
                    known.join(", ")
                )
            };
            diags
                .error(path, format!("undefined parameter `{name}`"))
                .help(help);
            failed = true;
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if failed {
        // The value stays unresolved; whatever fails on it later is this problem again.
        diags.mute(path);
        return None;
    }
    Some(whole.unwrap_or(Value::String(out)))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_are_read_as_yaml_scalars() {
        assert_eq!(
            parse_var("to=0"),
            Ok(("to".to_owned(), Value::Number(0.into())))
        );
        assert_eq!(
            parse_var("target=us-east-1"),
            Ok(("target".to_owned(), Value::String("us-east-1".to_owned())))
        );
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("1x=2").is_err());
    }

    #[test]
    fn substitution_stops_with_one_error_once_it_would_pass_the_largest_playbook() {
        let long = "x".repeat(400_000);
        let uses: Vec<String> = (0..20_000)
            .map(|i| format!("  k{i}: \"{{{{ big }}}}\""))
            .collect();
        let text = format!(
            "version: 1\nname: big\nparams:\n  big: {long}\nsteps:\n  - id: w\n    wait: 1s\ndescription:\n{}\n",
            uses.join("\n")
        );
        let err = crate::playbook::load_str("big.yaml", &text, &BTreeMap::new())
            .expect_err("too large once substituted");
        let crate::playbook::LoadError::Invalid { diagnostics, .. } = err else {
            panic!("{err}");
        };
        let shown: String = diagnostics
            .iter()
            .map(|d| d.render(None))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            shown
                .matches("substituting parameters makes the playbook larger than")
                .count(),
            1,
            "{}",
            &shown[..shown.len().min(2000)]
        );
        assert!(
            shown.contains("parameter `big` (400000 bytes)"),
            "{}",
            &shown[..shown.len().min(2000)]
        );
    }
}
