//! The `std::fs` backend: positioned writes and `fdatasync` on the calling thread.

use std::fs::File;
use std::io;

pub(super) struct PortableFile {
    file: File,
}

impl PortableFile {
    pub(super) fn new(file: File) -> PortableFile {
        PortableFile { file }
    }

    pub(super) fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        write_all_at(&self.file, data, offset)
    }

    pub(super) fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub(super) fn truncate(&self, length: u64) -> io::Result<()> {
        self.file.set_len(length)
    }

    pub(super) fn length(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub(super) fn close(self) -> io::Result<()> {
        close_file(self.file)
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(data, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let written = file.seek_write(data, offset)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "positioned write made no progress",
            ));
        }
        data = &data[written..];
        offset += written as u64;
    }
    Ok(())
}

/// Closes the descriptor explicitly so that a deferred write error (NFS, some FUSE file
/// systems report them only at close) reaches the caller instead of vanishing in `Drop`.
#[cfg(unix)]
pub(super) fn close_file(file: File) -> io::Result<()> {
    use std::os::unix::io::IntoRawFd;
    let descriptor = file.into_raw_fd();
    // SAFETY: `into_raw_fd` gave up ownership of the descriptor, so nothing else closes it.
    let result = unsafe { libc::close(descriptor) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
pub(super) fn close_file(file: File) -> io::Result<()> {
    drop(file);
    Ok(())
}
