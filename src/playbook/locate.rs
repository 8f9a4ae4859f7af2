//! Where each node of a YAML document sits in its file.
//!
//! serde_yaml gives typed values but no positions; this walks the same text with
//! yaml-rust2's event parser to map every [`YamlPath`] to a line and column, so that
//! any error found later (on a typed value) can still point at the source. It also
//! finds duplicate keys at the exact place of the second occurrence.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

use super::path::YamlPath;

/// A 1-based line and column in a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Pos {
    fn scalar(mark: Marker) -> Self {
        // yaml-rust2 columns are 0-based for scalars and flow collections.
        Self {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

/// Where a node is: its key (for mapping entries) and its value.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    /// The position of the mapping key that introduces the node, if any.
    pub key: Option<Pos>,
    /// The position of the node itself.
    pub value: Pos,
}

/// A key that appears twice in one mapping.
#[derive(Clone, Debug)]
pub struct DuplicateKey {
    /// The path of the repeated entry.
    pub path: YamlPath,
    /// Where the second occurrence is.
    pub pos: Pos,
    /// Where the first occurrence is.
    pub first: Pos,
}

/// Positions of every node in a document.
#[derive(Debug, Default)]
pub struct SourceMap {
    spans: HashMap<YamlPath, Span>,
    /// Keys repeated within one mapping.
    pub duplicates: Vec<DuplicateKey>,
    /// Where the text nests deeper than [`MAX_NESTING`]: the map stops there.
    pub too_deep: Option<Pos>,
    /// Tags other than YAML's core ones (`!evil`, `!!python/object`), shown as
    /// written, where they are.
    pub tags: Vec<(String, Pos)>,
}

/// How deep collections may nest in a playbook: far deeper than any real one (a
/// step's options sit at depth 5), shallow enough that no input makes reading it
/// slow or deep.
pub const MAX_NESTING: usize = 64;

/// Where `text` first nests collections deeper than [`MAX_NESTING`], by a scan
/// that costs one pass, before any parser sees it: flow brackets (`[`, `{`)
/// outside quotes and comments, and on each line the block depth its indentation
/// and leading `- ` items give (two columns a level, as playbooks are written).
pub fn too_deep(text: &str) -> Option<Pos> {
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    for (i, line) in text.lines().enumerate() {
        let mut column = 0;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        if quote.is_none() && flow == 0 {
            let indent = line.len() - line.trim_start_matches(' ').len();
            let rest = &line[indent..];
            let dashes = rest
                .as_bytes()
                .chunks(2)
                .take_while(|c| *c == b"- " || *c == b"-")
                .count();
            if indent / 2 + dashes > MAX_NESTING {
                return Some(Pos {
                    line: i + 1,
                    column: indent + 1,
                });
            }
        }
        while let Some(c) = chars.next() {
            column += 1;
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                    column += 1;
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if matches!(prev, ' ' | '[' | '{' | ',' | ':') => {
                    quote = Some(c)
                }
                (None, '#') if prev == ' ' || column == 1 => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow > MAX_NESTING {
                        return Some(Pos {
                            line: i + 1,
                            column,
                        });
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    None
}

/// The first character YAML never allows in a file (a control character other
/// than tab and line breaks), where it is.
pub fn forbidden_character(text: &str) -> Option<(char, Pos)> {
    for (i, line) in text.lines().enumerate() {
        for (column, c) in line.chars().enumerate() {
            if c.is_control() && c != '\t' && c != '\r' {
                return Some((
                    c,
                    Pos {
                        line: i + 1,
                        column: column + 1,
                    },
                ));
            }
        }
    }
    None
}

/// A tag shown as written, unless it is one of YAML's core schema.
fn foreign(tag: Option<&yaml_rust2::parser::Tag>) -> Option<String> {
    let tag = tag?;
    let core = tag.handle == "tag:yaml.org,2002:"
        && matches!(
            tag.suffix.as_str(),
            "str" | "int" | "bool" | "float" | "null" | "map" | "seq"
        );
    if core {
        return None;
    }
    Some(match tag.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
        handle => format!("{handle}{}", tag.suffix),
    })
}

enum Frame {
    Map {
        path: YamlPath,
        key: Option<(String, Pos)>,
        seen: HashMap<String, Pos>,
        first: bool,
    },
    Seq {
        path: YamlPath,
        next: usize,
    },
    /// A collection used as a mapping key; its content has no useful path.
    ComplexKey,
}

impl SourceMap {
    /// Maps the positions of `source`. Stops quietly at a syntax error: the map then
    /// covers what came before it, which is what a syntax error's path needs.
    pub fn build(source: &str) -> Self {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(source);
        while let Ok((event, mark)) = parser.next_token() {
            match event {
                Event::StreamEnd => break,
                Event::Scalar(text, _, _, tag) => {
                    let pos = Pos::scalar(mark);
                    if let Some(tag) = foreign(tag.as_ref()) {
                        map.tags.push((tag, pos));
                    }
                    if let Some(path) = map.enter(&mut stack, Some(text), pos) {
                        map.record(&stack, path, pos);
                        complete(&mut stack);
                    }
                }
                Event::Alias(_) => {
                    let pos = Pos::scalar(mark);
                    if let Some(path) = map.enter(&mut stack, None, pos) {
                        map.record(&stack, path, pos);
                        complete(&mut stack);
                    }
                }
                Event::MappingStart(_, ref tag) | Event::SequenceStart(_, ref tag) => {
                    let pos = Pos::scalar(mark);
                    if let Some(tag) = foreign(tag.as_ref()) {
                        map.tags.push((tag, pos));
                    }
                    if stack.len() >= MAX_NESTING {
                        map.too_deep = Some(pos);
                        break;
                    }
                    let is_map = matches!(event, Event::MappingStart(..));
                    match map.enter(&mut stack, None, pos) {
                        Some(path) => {
                            map.record(&stack, path.clone(), pos);
                            stack.push(if is_map {
                                Frame::Map {
                                    path,
                                    key: None,
                                    seen: HashMap::new(),
                                    first: true,
                                }
                            } else {
                                Frame::Seq { path, next: 0 }
                            });
                        }
                        None => stack.push(Frame::ComplexKey),
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    complete(&mut stack);
                }
                _ => {}
            }
        }
        map
    }

    /// Works out the path of a node that starts now. Returns `None` when the node is a
    /// mapping key (keys are remembered, not recorded as nodes).
    fn enter(&mut self, stack: &mut [Frame], scalar: Option<String>, pos: Pos) -> Option<YamlPath> {
        match stack.last_mut() {
            None => Some(YamlPath::root()),
            Some(Frame::ComplexKey) => None,
            Some(Frame::Seq { path, next }) => {
                let path = path.index(*next);
                *next += 1;
                Some(path)
            }
            Some(Frame::Map {
                path,
                key,
                seen,
                first,
            }) => match key {
                Some((name, _)) => Some(path.key(name.clone())),
                None => {
                    let name = scalar.unwrap_or_else(|| "<complex key>".to_owned());
                    if let Some(first_pos) = seen.get(&name) {
                        self.duplicates.push(DuplicateKey {
                            path: path.key(name.clone()),
                            pos,
                            first: *first_pos,
                        });
                    } else {
                        seen.insert(name.clone(), pos);
                    }
                    // A block mapping's start marker is one column off; its first key
                    // is the better place to point at.
                    if *first {
                        *first = false;
                        if let Some(span) = self.spans.get_mut(path)
                            && span.value.line == pos.line
                        {
                            span.value = pos;
                        }
                    }
                    *key = Some((name, pos));
                    None
                }
            },
        }
    }

    fn record(&mut self, stack: &[Frame], path: YamlPath, value: Pos) {
        let key = match stack.last() {
            Some(Frame::Map {
                key: Some((_, pos)),
                ..
            }) => Some(*pos),
            _ => None,
        };
        self.spans.entry(path).or_insert(Span { key, value });
    }

    /// The span of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &YamlPath) -> Option<Span> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(span) = self.spans.get(&p) {
                return Some(*span);
            }
            current = p.parent();
        }
        None
    }

    /// The deepest recorded path at or before `pos`: where a syntax error happened.
    pub fn path_before(&self, pos: Pos) -> YamlPath {
        self.spans
            .iter()
            .filter(|(_, span)| span.key.unwrap_or(span.value) <= pos)
            .max_by_key(|(path, span)| (span.key.unwrap_or(span.value), path.to_string().len()))
            .map(|(path, _)| path.clone())
            .unwrap_or_default()
    }
}

/// Marks the node on top of the stack's parent as finished: a mapping waits for its
/// next key.
fn complete(stack: &mut [Frame]) {
    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
        *key = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_sequences_and_block_maps_get_one_based_positions() {
        let map = SourceMap::build("x:\n  a: 1\n  bb: [1, 2]\n");
        let bb = YamlPath::root().key("x").key("bb");
        let span = map.find(&bb).expect("bb is mapped");
        assert_eq!(span.key, Some(Pos { line: 3, column: 3 }));
        assert_eq!(span.value, Pos { line: 3, column: 7 });
        let second = map.find(&bb.index(1)).expect("bb[1] is mapped");
        assert_eq!(
            second.value,
            Pos {
                line: 3,
                column: 11
            }
        );
        assert_eq!(
            map.find(&YamlPath::root().key("x")).map(|s| s.value),
            Some(Pos { line: 2, column: 3 })
        );
    }

    #[test]
    fn duplicate_keys_point_at_the_second_occurrence() {
        let map = SourceMap::build("a: 1\nb: 2\na: 3\n");
        assert_eq!(map.duplicates.len(), 1);
        assert_eq!(map.duplicates[0].pos, Pos { line: 3, column: 1 });
        assert_eq!(map.duplicates[0].first, Pos { line: 1, column: 1 });
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let map = SourceMap::build("steps:\n  - id: a\n");
        let span = map
            .find(&YamlPath::root().key("steps").index(0).key("nope"))
            .expect("ancestor");
        assert_eq!(span.value, Pos { line: 2, column: 5 });
    }

    #[test]
    fn nesting_past_the_limit_is_found_in_one_pass_where_it_happens() {
        let flow = format!("steps: {}\n", "[".repeat(100_000));
        assert_eq!(
            too_deep(&flow),
            Some(Pos {
                line: 1,
                column: 8 + MAX_NESTING
            })
        );
        let dashes = format!("steps:\n{}x\n", "- ".repeat(100));
        assert_eq!(too_deep(&dashes).map(|p| p.line), Some(2));
        // Brackets in quotes and comments are text; a real playbook passes.
        assert_eq!(
            too_deep(&format!(
                "a: \"{}\" # {}\n",
                "[".repeat(100),
                "{".repeat(100)
            )),
            None
        );
        assert_eq!(
            too_deep("steps:\n  - id: a\n    wait: { x: [1, [2, {y: 3}]] }\n"),
            None
        );
    }

    #[test]
    fn a_control_character_is_found_where_it_is() {
        assert_eq!(
            forbidden_character("a: 1\nb: x\u{0}y\n").map(|(c, p)| (c, p.line, p.column)),
            Some(('\u{0}', 2, 5))
        );
        assert_eq!(forbidden_character("a:\tb\r\n"), None);
    }
}
