//! The one way evac prints, after cargo's `Shell`: messages for people go to stderr,
//! data (plans, reports, JSON events) to stdout, and both go around the progress
//! bars when they are drawn, so that a redraw never erases a message. Whether
//! colour is used is decided once, from the terminal and `NO_COLOR`. Control
//! characters from playbooks and AWS are shown escaped ([`crate::text`]). The engine
//! prints nothing; commands print only through here.
//!
//! Use the macros: `say!` (a line for people), `say_error!` and `say_warning!`
//! (prefixed `error:` / `warning:`), `out!` (a line of data on stdout).

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use indicatif::MultiProgress;

/// What the process prints through.
struct Shell {
    /// The progress bars being drawn on stderr, if any.
    bars: Mutex<Option<MultiProgress>>,
    /// Whether stderr gets colour.
    colour: bool,
    /// Whether stdout gets colour.
    colour_out: bool,
}

fn shell() -> &'static Shell {
    static SHELL: OnceLock<Shell> = OnceLock::new();
    SHELL.get_or_init(|| {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Shell {
            bars: Mutex::new(None),
            colour: allowed && std::io::stderr().is_terminal(),
            colour_out: allowed && std::io::stdout().is_terminal(),
        }
    })
}

/// Whether messages on stderr are coloured.
pub fn colour() -> bool {
    shell().colour
}

/// Whether data on stdout is coloured (a plan shown on a terminal).
pub fn colour_out() -> bool {
    shell().colour_out
}

/// Registers the progress bars drawn on stderr (or none): from then on every
/// message is printed with the bars cleared and redrawn after it.
pub fn set_bars(bars: Option<MultiProgress>) {
    *shell().bars.lock().unwrap_or_else(|p| p.into_inner()) = bars;
}

/// Runs `print` with the bars cleared, then redraws them.
fn around_bars(print: impl FnOnce()) {
    let bars = shell()
        .bars
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match bars {
        Some(bars) => bars.suspend(print),
        None => print(),
    }
}

/// Text for stderr, as given (no newline added). A failed write to stderr has
/// nowhere to be reported and is dropped.
pub fn err_text(text: &str) {
    // Nothing from a playbook or from AWS moves the cursor, clears the screen or
    // sets the title (see [`crate::text`]).
    let text = crate::text::terminal(text, colour());
    around_bars(|| {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    });
}

/// A line for people on stderr.
pub fn line(text: impl Display) {
    err_text(&format!("{text}\n"));
}

fn prefixed(label: &str, style: console::Style, text: impl Display) {
    let label = if colour() {
        style.bold().apply_to(label).force_styling(true).to_string()
    } else {
        label.to_owned()
    };
    line(format_args!("{label} {text}"));
}

/// `error: ...` on stderr.
pub fn error(text: impl Display) {
    prefixed("error:", console::Style::new().red(), text);
}

/// `warning: ...` on stderr.
pub fn warning(text: impl Display) {
    prefixed("warning:", console::Style::new().yellow(), text);
}

/// Data on stdout, as given. A reader that went away does not stop evac: commands
/// that change nothing end quietly on a closed pipe (see
/// [`crate::cli::quiet_on_closed_pipe`]); a run goes on.
pub fn out_text(text: &str) {
    let text = crate::text::terminal(text, colour_out());
    around_bars(|| {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    });
}

/// A line for people on stderr, above the progress bars.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::shell::line(format_args!($($arg)*)) };
}

/// `error: ...` on stderr, above the progress bars.
#[macro_export]
macro_rules! say_error {
    ($($arg:tt)*) => { $crate::shell::error(format_args!($($arg)*)) };
}

/// `warning: ...` on stderr, above the progress bars.
#[macro_export]
macro_rules! say_warning {
    ($($arg:tt)*) => { $crate::shell::warning(format_args!($($arg)*)) };
}

/// A line of data on stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::shell::out_text(&format!("{}\n", format_args!($($arg)*))) };
}

/// Where `tracing` writes: each event is one message through the shell, so a log
/// line never breaks or is erased by the progress bars.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

/// One event's text, printed when complete.
#[derive(Debug, Default)]
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            err_text(&String::from_utf8_lossy(&self.0));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine::default()
    }
}
