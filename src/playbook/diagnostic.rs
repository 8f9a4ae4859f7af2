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
    /// An earlier place the problem refers to ("first set here").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<Related>,
}

/// A second place a diagnostic points at.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Related {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is there.
    pub label: String,
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

    /// The full human rendering: the headline, the source lines with a caret under
    /// the place (and under the related place, labelled), and the help line. The
    /// excerpt is drawn by annotate-snippets, which knows tabs and display widths.
    pub fn render(&self, source: Option<&str>) -> String {
        use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
        let mut out = self.headline();
        out.push('\n');
        let (Some(line), Some(column), Some(source)) = (self.line, self.column, source) else {
            return self.with_help(out);
        };
        let lines: Vec<&str> = source.split_inclusive('\n').collect();
        let related = self
            .related
            .as_ref()
            .filter(|r| r.line >= 1 && r.line <= line);
        let first = related.map_or(line, |r| r.line);
        let Some(excerpt) = lines.get(first - 1..line) else {
            return self.with_help(out);
        };
        let excerpt: String = excerpt.concat();
        // Byte offsets in the excerpt of a (line, character column) place, and of the
        // end of the token there.
        let span = |at_line: usize, at_column: usize| -> Option<std::ops::Range<usize>> {
            let before: usize = lines
                .get(first - 1..at_line - 1)?
                .iter()
                .map(|l| l.len())
                .sum();
            let text = lines.get(at_line - 1)?.trim_end_matches(['\n', '\r']);
            let start = text
                .char_indices()
                .nth(at_column.saturating_sub(1))
                .map_or(text.len(), |(i, _)| i);
            // The token: up to a separator, or a colon that ends a key.
            let rest = &text[start..];
            let mut len = rest.len();
            let mut chars = rest.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                let key_end = c == ':' && chars.peek().is_none_or(|(_, n)| n.is_whitespace());
                if c.is_whitespace() || matches!(c, ',' | '}' | ']' | '#') || key_end {
                    len = i;
                    break;
                }
            }
            let len = len.max(rest.chars().next().map_or(0, char::len_utf8));
            Some(before + start..before + start + len)
        };
        let Some(primary) = span(line, column) else {
            return self.with_help(out);
        };
        let mut snippet = Snippet::source(excerpt.as_str())
            .line_start(first)
            .fold(true)
            .annotation(AnnotationKind::Primary.span(primary));
        if let Some(r) = related
            && let Some(range) = span(r.line, r.column)
        {
            snippet =
                snippet.annotation(AnnotationKind::Context.span(range).label(r.label.as_str()));
        }
        let group = [Group::with_level(Level::ERROR).element(snippet)];
        out.push_str(&Renderer::plain().render(&group));
        out.push('\n');
        self.with_help(out)
    }

    fn with_help(&self, mut out: String) -> String {
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
    /// Values that are one parameter's value in whole (`to: "{{ target }}"`): a
    /// problem there is the parameter's, said once, at its line under `params:`.
    from_params: Vec<(YamlPath, String)>,
    /// Parameters set on the command line, with what set them (`--var target=...`).
    set_by: std::collections::BTreeMap<String, String>,
    /// Parameters whose problem is said already.
    said: std::collections::BTreeSet<String>,
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
            related: None,
        };
        Self {
            file,
            map,
            items: Vec::new(),
            muted: Vec::new(),
            scratch,
            from_params: Vec::new(),
            set_by: Default::default(),
            said: Default::default(),
        }
    }

    /// The value at `path` is parameter `name`'s value in whole.
    pub fn is_param(&mut self, path: &YamlPath, name: &str) {
        self.from_params.push((path.clone(), name.to_owned()));
    }

    /// Parameter `name` was set by `by` (`--var target=us-west-3`), not by the file.
    pub fn set_by(&mut self, name: &str, by: String) {
        self.set_by.insert(name.to_owned(), by);
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
            related: None,
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// Records a value that is not what its place takes (not a region, not a
    /// duration): when the value is a parameter's in whole, the problem is the
    /// parameter's, said once at its line under `params:`.
    pub fn bad_value(&mut self, path: &YamlPath, message: impl Into<String>) -> &mut Diagnostic {
        let param = self
            .from_params
            .iter()
            .find(|(at, _)| path.starts_with(at))
            .map(|(_, name)| name.clone());
        match param {
            Some(name) => self.at_param(path, &name, message.into()),
            None => self.error(path, message),
        }
    }

    fn push(&mut self, path: &YamlPath, anchor: Anchor, message: String) -> &mut Diagnostic {
        let pos = self.map.find(path).map(|span| match anchor {
            Anchor::Key => span.key.unwrap_or(span.value),
            Anchor::Value => span.value,
        });
        self.error_at(path, pos, message)
    }

    /// A problem of a value that is a parameter's in whole, said once per parameter
    /// at its line under `params:` (where it is fixed), naming where it was used.
    fn at_param(&mut self, used: &YamlPath, name: &str, message: String) -> &mut Diagnostic {
        if self.muted.iter().any(|m| used.starts_with(m)) || !self.said.insert(name.to_owned()) {
            return &mut self.scratch;
        }
        let declared = YamlPath::root().key("params").key(name);
        let pos = self.map.find(&declared).map(|span| span.value);
        let by = match self.set_by.get(name) {
            Some(by) => format!(", set by {by}"),
            None => String::new(),
        };
        self.error_at(
            &declared,
            pos,
            format!("{message} (parameter `{name}`{by}, used at {used})"),
        )
    }

    /// Where the value at `path` is in the source, when known.
    pub fn place(&self, path: &YamlPath) -> Option<Pos> {
        self.map.find(path).map(|span| span.value)
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
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// Points at an earlier place too, labelled.
    pub fn related(&mut self, pos: Pos, label: impl Into<String>) -> &mut Self {
        self.related = Some(Related {
            line: pos.line,
            column: pos.column,
            label: label.into(),
        });
        self
    }
}

/// The candidate closest to `got`, when one is close enough to be a likely typo.
pub fn closest<'a>(got: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(got, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
