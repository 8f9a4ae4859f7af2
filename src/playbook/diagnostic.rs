//! Located problems found while loading a playbook, and how they are shown.

use std::fmt::Write as _;

use serde::Serialize;

use super::locate::{Pos, SourceMap};
use super::path::YamlPath;

/// One problem in a playbook: where it is and what to do about it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Diagnostic {
    /// The playbook file as the user named it.
    pub file: String,
    /// 1-based line, when the place is known.
    pub line: Option<usize>,
    /// 1-based column, when the place is known.
    pub column: Option<usize>,
    /// The YAML path of the offending node (`steps[2].shift_traffic.ramp`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, where there is something specific to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// The first line of the human rendering: `FILE:LINE:COLUMN: PATH: message`.
    pub fn headline(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                format!(
                    "{}:{}:{}: {}: {}",
                    self.file, line, column, self.path, self.message
                )
            }
            _ => format!("{}: {}: {}", self.file, self.path, self.message),
        }
    }

    /// The full human rendering: the headline, the source line with a caret under the
    /// place, and the help line.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.headline();
        out.push('\n');
        if let (Some(line), Some(column), Some(source)) = (self.line, self.column, source)
            && let Some(text) = source.lines().nth(line.saturating_sub(1))
        {
            let number = line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {text}");
            let _ = writeln!(out, "{pad} | {}^", " ".repeat(column.saturating_sub(1)));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

/// Where in the node a problem should point: at the key that introduces it (unknown
/// or repeated fields) or at its value (everything else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Point at the mapping key.
    Key,
    /// Point at the value.
    Value,
}

/// Collects the diagnostics of one file, locating each by its YAML path.
pub struct Diagnostics<'a> {
    file: String,
    map: &'a SourceMap,
    items: Vec<Diagnostic>,
    /// Paths whose problems are already explained (an unresolved placeholder), so
    /// that what follows from them is not reported again.
    muted: Vec<YamlPath>,
    /// Where problems under a muted path are written and forgotten.
    scratch: Diagnostic,
}

impl<'a> Diagnostics<'a> {
    /// A collector for `file`, whose positions are in `map`.
    pub fn new(file: impl Into<String>, map: &'a SourceMap) -> Self {
        let file = file.into();
        let scratch = Diagnostic {
            file: file.clone(),
            line: None,
            column: None,
            path: String::new(),
            message: String::new(),
            help: None,
        };
        Self {
            file,
            map,
            items: Vec::new(),
            muted: Vec::new(),
            scratch,
        }
    }

    /// Stops reporting problems at or below `path` from now on.
    pub fn mute(&mut self, path: &YamlPath) {
        self.muted.push(path.clone());
    }

    /// Records a problem at the value of `path`.
    pub fn error(&mut self, path: &YamlPath, message: impl Into<String>) -> &mut Diagnostic {
        self.push(path, Anchor::Value, message.into())
    }

    /// Records a problem at the key of `path` (falling back to its value).
    pub fn error_at_key(&mut self, path: &YamlPath, message: impl Into<String>) -> &mut Diagnostic {
        self.push(path, Anchor::Key, message.into())
    }

    /// Records a problem at an explicit position.
    pub fn error_at(
        &mut self,
        path: &YamlPath,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        if self.muted.iter().any(|m| path.starts_with(m)) {
            return &mut self.scratch;
        }
        self.items.push(Diagnostic {
            file: self.file.clone(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path: path.to_string(),
            message: message.into(),
            help: None,
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    fn push(&mut self, path: &YamlPath, anchor: Anchor, message: String) -> &mut Diagnostic {
        let pos = self.map.find(path).map(|span| match anchor {
            Anchor::Key => span.key.unwrap_or(span.value),
            Anchor::Value => span.value,
        });
        self.error_at(path, pos, message)
    }

    /// How many problems are recorded so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Drops the problems recorded since `start` for which `keep` is false.
    pub fn retain_since(&mut self, start: usize, keep: impl Fn(&Diagnostic) -> bool) {
        let mut i = 0;
        self.items.retain(|d| {
            i += 1;
            i <= start || keep(d)
        });
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics in source order (unlocated ones last), then by path.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.line.is_none(), d.line, d.column, d.path.clone());
            key(a).cmp(&key(b))
        });
        self.items
    }
}

impl Diagnostic {
    /// Adds a help line.
    pub fn with_help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// The candidate closest to `got`, when one is close enough to be a likely typo.
pub(super) fn closest<'a>(got: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(got, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
