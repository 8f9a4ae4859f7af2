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
                Event::Scalar(text, ..) => {
                    let pos = Pos::scalar(mark);
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
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let pos = Pos::scalar(mark);
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
}
