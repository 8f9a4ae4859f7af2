//! A pseudo-terminal for tests: the child gets the slave as stdin, stdout and stderr
//! (a terminal of 40 rows and 120 columns); the test types into the master and reads
//! everything the child wrote, as raw bytes or as the screen a person would see.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Rows and columns of the terminal.
pub const ROWS: u16 = 40;
/// Columns of the terminal.
pub const COLS: u16 = 120;

/// An open pseudo-terminal.
pub struct Pty {
    master: std::fs::File,
    slave: Option<OwnedFd>,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    /// Opens one; a thread reads everything the child writes.
    pub fn open() -> Self {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two new descriptors into the given integers and
        // reads the window size; the name and termios arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here only.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("clone master");
        let shared = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with an error (EIO) once the child and its terminal are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut out) = shared.lock() {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        });
        Pty {
            master,
            slave: Some(slave),
            output,
        }
    }

    /// Starts `cmd` on the terminal.
    pub fn spawn(&mut self, mut cmd: Command) -> Child {
        let slave = self.slave.take().expect("one child per terminal");
        cmd.stdin(Stdio::from(slave.try_clone().expect("slave")))
            .stdout(Stdio::from(slave.try_clone().expect("slave")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("evac starts")
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        self.output
            .lock()
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap_or_default()
    }

    /// The screen a person would see now: everything written, played through a
    /// terminal emulator.
    pub fn screen(&self) -> String {
        let (rows, cols) = (
            std::num::NonZero::new(ROWS).expect("rows"),
            std::num::NonZero::new(COLS).expect("columns"),
        );
        let mut parser = vt100::Parser::new(rows, cols, 0);
        if let Ok(out) = self.output.lock() {
            parser.process(&out);
        }
        parser.screen().contents()
    }

    /// Types a line.
    pub fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type into the terminal");
    }
}
