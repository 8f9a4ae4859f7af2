//! Files a command writes at the user's request (`report --out`, `plan --save`):
//! `-` is stdout; a regular file (or a new one) is replaced as a whole, through a
//! file beside it renamed over it, so a reader never sees half of it and a
//! symlink there is replaced, never followed; anything else that is not a folder
//! (a device such as `/dev/stdout` or `/dev/null`, a pipe, or a link to one) is
//! written to as a stream and never replaced.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` as described above.
pub fn write_out(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        crate::shell::out_text(&String::from_utf8_lossy(bytes));
        return Ok(());
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(std::io::Error::other(
            "it is a folder: give the path of a file in it",
        )),
        Ok(meta) if !meta.is_file() => {
            // A device or a pipe, directly or through a link: written to, never
            // replaced by a regular file.
            let mut stream = std::fs::OpenOptions::new().write(true).open(path)?;
            stream.write_all(bytes)?;
            stream.flush()
        }
        _ => crate::journal::replace_file(path, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn a_device_is_written_to_and_never_replaced() {
        write_out(Path::new("/dev/null"), b"report").expect("written");
        let meta = std::fs::symlink_metadata("/dev/null").expect("still there");
        assert!(meta.file_type().is_char_device(), "still a device");
        // A full device says so, and stays a device.
        if Path::new("/dev/full").exists() {
            let err = write_out(Path::new("/dev/full"), b"report").expect_err("full");
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
            let meta = std::fs::symlink_metadata("/dev/full").expect("still there");
            assert!(meta.file_type().is_char_device(), "still a device");
        }
        // Through a link, the same.
        let dir = tempfile::tempdir().expect("dir");
        let link = dir.path().join("out.md");
        std::os::unix::fs::symlink("/dev/null", &link).expect("link");
        write_out(&link, b"report").expect("written");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink(),
            "the link stays"
        );
    }

    #[test]
    fn a_regular_file_is_replaced_whole_and_a_folder_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("r.md");
        std::fs::write(&path, "old, and longer than the new text").expect("old");
        write_out(&path, b"new").expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        let err = write_out(dir.path(), b"x").expect_err("a folder");
        assert!(err.to_string().contains("is a folder"), "{err}");
    }
}
