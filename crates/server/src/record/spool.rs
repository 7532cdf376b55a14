//! The spool of one recording: appended in batches, flushed to the OS at least every
//! [`FLUSH_INTERVAL_MS`] so a crash (kill -9) loses at most that much media.
//!
//! A spool is one file (FLV, fragmented MP4) or, for HLS, a directory whose current segment
//! file receives the appends ([`Spool::open_segment`]).

use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes buffered before a write(2) — large writes keep syscalls per frame well below one.
pub const WRITE_BUFFER: usize = 256 * 1024;
/// Longest time media sits in our buffer before it reaches the OS.
pub const FLUSH_INTERVAL_MS: i64 = 1000;

pub struct Spool {
    path: PathBuf,
    /// `None` for a directory spool with no segment open yet.
    file: Option<File>,
    buf: Vec<u8>,
    /// Bytes handed to the OS so far.
    flushed: u64,
    last_flush_ms: i64,
}

impl Spool {
    pub fn create(path: &Path, now_ms: i64) -> io::Result<Self> {
        // create_new: a file id collision must never overwrite another recording.
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            buf: Vec::with_capacity(WRITE_BUFFER),
            flushed: 0,
            last_flush_ms: now_ms,
        })
    }

    /// A directory spool (HLS): segments are opened inside it one after the other.
    pub fn create_dir(path: &Path, now_ms: i64) -> io::Result<Self> {
        // create_dir fails if it exists: an id collision never mixes two recordings.
        std::fs::create_dir(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: None,
            buf: Vec::with_capacity(WRITE_BUFFER),
            flushed: 0,
            last_flush_ms: now_ms,
        })
    }

    /// Directory spools: flushes and closes the current segment, then appends go to `name`.
    pub fn open_segment(&mut self, name: &str) -> io::Result<()> {
        self.flush()?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))?;
        self.file = Some(file);
        Ok(())
    }

    /// Directory spools: writes `name` beside the segments, atomically (temp + rename).
    pub fn write_beside(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents)?;
        std::fs::rename(tmp, self.path.join(name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.file.as_mut().ok_or_else(no_segment)
    }

    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > WRITE_BUFFER && !self.buf.is_empty() {
            self.flush()?;
        }
        if bytes.len() >= WRITE_BUFFER {
            // Huge pieces go straight through instead of being copied into the buffer.
            self.file()?.write_all(bytes)?;
            self.flushed += bytes.len() as u64;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    pub fn append_all(&mut self, pieces: &[Bytes]) -> io::Result<()> {
        for p in pieces {
            self.append(p)?;
        }
        Ok(())
    }

    /// Flushes if the last flush is older than [`FLUSH_INTERVAL_MS`].
    pub fn maybe_flush(&mut self, now_ms: i64) -> io::Result<()> {
        if now_ms - self.last_flush_ms >= FLUSH_INTERVAL_MS {
            self.last_flush_ms = now_ms;
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let file = self.file.as_mut().ok_or_else(no_segment)?;
            file.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Last flush at close. No fsync: the spool is only an input to finalize, whose output is
    /// fsynced before it is catalogued.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
}

fn no_segment() -> io::Error {
    io::Error::other("no segment open in a directory spool")
}
