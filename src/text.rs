//! Text from outside evac, made safe to show. Playbooks (approve texts, params,
//! file names) and AWS (group names, tag values, record names, set identifiers:
//! all may hold any character there) reach the terminal and the Markdown report.
//! A control character in them could clear the screen, set the window title, move
//! the cursor or forge a line of output; a bidi override could make text read
//! otherwise than it is.
//!
//! - [`one_line`]: a value shown inside a line: every control character (line
//!   breaks included) and bidi control is shown escaped, as Rust writes it
//!   (`\n`, `\u{1b}`, `\u{202e}`).
//! - [`terminal`]: a whole message on its way out (see [`crate::shell`]): the
//!   same, except the line breaks and tabs that lay it out and, when colour is on,
//!   the colour sequences evac writes itself.
//! - [`markdown`]: a value in a Markdown table cell: [`one_line`], with HTML and the
//!   cell's pipe escaped.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` changes how text around it is shown rather than being shown:
/// C0 and C1 controls, DEL, and the bidi controls (embeddings, overrides,
/// isolates, marks).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn escaped(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `text` with every control character and bidi control shown escaped.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The length of the colour sequence (`ESC [ digits/semicolons m`, as evac's
/// styles write) at the start of `rest`, if there is one.
fn colour_sequence(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix("\u{1b}[")?;
    let end = body.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    let params = &body[..end];
    let known = params.split(';').all(|p| {
        matches!(p.parse::<u8>(), Ok(0 | 1 | 2 | 22 | 39 | 30..=37 | 90..=97)) || p.is_empty()
    });
    (body[end..].starts_with('m') && known).then_some(2 + end + 1)
}

/// A message on its way to the terminal or a pipe: every control character and
/// bidi control shown escaped, except line breaks and tabs and, when `colour` is
/// on, colour sequences of the kind evac's styles write.
pub fn terminal(text: &str, colour: bool) -> Cow<'_, str> {
    let clean = |c: char| c == '\n' || c == '\t' || !is_hidden(c);
    if text.chars().all(clean) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if colour && let Some(len) = colour_sequence(rest) {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        if clean(c) {
            out.push(c);
        } else {
            escaped(c, &mut out);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// A value in a Markdown table cell: shown on one line, HTML and pipes escaped
/// (a backtick only changes how a cell looks, and evac's own texts use them).
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            c => out.push(c),
        }
    }
    out
}

/// A value shown as code in a Markdown table cell: a code span when it has no
/// character that would end it or the cell, else the escaped text.
pub fn markdown_code(text: &str) -> String {
    if text
        .chars()
        .any(|c| matches!(c, '`' | '|' | '<' | '>' | '&') || is_hidden(c))
    {
        markdown(text)
    } else {
        format!("`{text}`")
    }
}

/// Lines of a table for a terminal: each column as wide as its widest cell (the
/// heading included), two spaces between columns, the columns in `right` aligned
/// right, the last column not padded.
pub fn columns<const N: usize>(
    head: [&str; N],
    rows: &[[String; N]],
    right: &[usize],
) -> Vec<String> {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            if i + 1 == N {
                out.push_str(cell);
            } else if right.contains(&i) {
                out.push_str(&format!("{cell:>w$}  "));
            } else {
                out.push_str(&format!("{cell:w$}  "));
            }
        }
        out
    };
    std::iter::once(line(head))
        .chain(rows.iter().map(|r| line(r.each_ref().map(String::as_str))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_controls_are_shown_escaped() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("a\u{1b}]0;owned\u{7}b\r\nc\u{202e}d"),
            "a\\u{1b}]0;owned\\u{7}b\\r\\nc\\u{202e}d"
        );
        // The layout of a message stays; what could move the cursor does not.
        assert_eq!(
            terminal("line 1\n\tline 2\u{1b}[2J\r", false),
            "line 1\n\tline 2\\u{1b}[2J\\r"
        );
    }

    #[test]
    fn only_colour_sequences_pass_and_only_when_colour_is_on() {
        let red = "\u{1b}[31merror:\u{1b}[0m done";
        assert_eq!(terminal(red, true), red);
        assert_eq!(terminal(red, false), "\\u{1b}[31merror:\\u{1b}[0m done");
        // Concealed text, a clear screen, a title: never.
        assert_eq!(terminal("\u{1b}[8mhidden", true), "\\u{1b}[8mhidden");
        assert_eq!(terminal("\u{1b}[2J", true), "\\u{1b}[2J");
        assert_eq!(terminal("\u{1b}]0;t\u{7}", true), "\\u{1b}]0;t\\u{7}");
    }

    #[test]
    fn markdown_cells_escape_html_pipes_and_line_breaks() {
        assert_eq!(
            markdown("<img src=x onerror=alert(1)> | x\n| forged |"),
            "&lt;img src=x onerror=alert(1)&gt; \\| x\\n\\| forged \\|"
        );
        assert_eq!(markdown_code("api-use1"), "`api-use1`");
        assert_eq!(markdown_code("a|b"), "a\\|b");
    }
}
