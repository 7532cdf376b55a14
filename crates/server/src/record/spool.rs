//! The spool of one recording: appended in batches, flushed to the OS at least every
//! [`FLUSH_INTERVAL_MS`] so a crash (kill -9) loses at most that much media.
//!
//! Zero-copy: frame payloads arrive as `Bytes` slices of the socket read buffer and are queued
//! as they are; only the few bytes of tag/box headers are copied (into one small scratch
//! buffer). A batch of up to [`FLUSH_BYTES`] goes to the file in one `writev`, so a real-time
//! stream costs a handful of write syscalls per second and holds at most one batch in memory.
//!
//! A spool is one file (FLV, fragmented MP4) or, for HLS, a directory whose current segment
//! file receives the appends ([`Spool::open_segment`]).

use bytes::{Bytes, BytesMut};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};

/// Queued bytes that trigger a `writev`. Small, because what is queued is memory the stream
/// holds, and 32 KiB is already only ~10 writes per second for a 2.7 Mbit/s stream (nginx-rtmp
/// makes ~290).
pub const FLUSH_BYTES: usize = 32 * 1024;
/// Longest time media sits in our queue before it reaches the OS.
pub const FLUSH_INTERVAL_MS: i64 = 1000;
/// Pieces per `writev` call (Linux allows 1024); a batch with more is written in several calls.
const MAX_IOVECS: usize = 128;
/// Queued pieces that trigger a `writev` regardless of their size (many tiny audio frames).
const FLUSH_PIECES: usize = MAX_IOVECS;
/// Headers, small payloads and generated data are copied into a scratch buffer allocated at
/// least this big, then handed out as `Bytes` slices of it; it is reclaimed in place once
/// written, so steady-state appends allocate nothing.
const SCRATCH: usize = 4 * 1024;
/// Payloads up to this size are copied into the scratch buffer rather than queued as they
/// are: an audio frame next to its tag header costs one iovec instead of three.
const INLINE_LIMIT: usize = 512;

/// With write-behind on, the kernel is asked to start writing a spool's data to disk once this
/// much has been handed to it since the last request. A finished file must be on disk before
/// it is catalogued (its `fsync` at finalize); writing behind as it records leaves that fsync
/// almost nothing to do, so when many streams end together their callbacks are not queued
/// behind seconds of dirty page cache (a 10 s, 1 Mbit/s push is ~1.3 MB; 200 of them
/// ending at once were ~0.7 s of disk writes). Costs one `fadvise` per 64 KiB, made on a
/// thread of its own.
pub const WRITE_BEHIND_BYTES: u64 = 64 * 1024;

pub struct Spool {
    path: PathBuf,
    /// `None` for a directory spool with no segment open yet.
    /// Shared with the write-behind thread, which may still hold it after the spool closes.
    file: Option<Arc<File>>,
    /// Queued pieces, in file order; `scratch` holds bytes that follow the last of them.
    pending: Vec<Bytes>,
    pending_len: usize,
    scratch: BytesMut,
    /// Bytes handed to the OS so far.
    flushed: u64,
    last_flush_ms: i64,
    /// Start writeback as we go (formats whose spool becomes the final file: FLV, HLS).
    write_behind: bool,
    /// Bytes written into the current file (an HLS segment restarts it).
    file_len: u64,
    /// Where the current file's last write-behind request started and ended.
    behind_from: u64,
    behind_to: u64,
}

impl Spool {
    /// A file spool. `write_behind`: see [`WRITE_BEHIND_BYTES`]; off for spools that are
    /// only read back and copied (MP4), whose pages finalize reads again.
    pub fn create(path: &Path, now_ms: i64, write_behind: bool) -> io::Result<Self> {
        crate::failpoint::io("spool.create")?;
        // create_new: a file id collision must never overwrite another recording.
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Self::new(path, Some(file), now_ms, write_behind))
    }

    /// A directory spool (HLS): segments are opened inside it one after the other.
    pub fn create_dir(path: &Path, now_ms: i64) -> io::Result<Self> {
        crate::failpoint::io("spool.create")?;
        // create_dir fails if it exists: an id collision never mixes two recordings.
        std::fs::create_dir(path)?;
        Ok(Self::new(path, None, now_ms, true))
    }

    fn new(path: &Path, file: Option<File>, now_ms: i64, write_behind: bool) -> Self {
        Self {
            path: path.to_path_buf(),
            file: file.map(Arc::new),
            pending: Vec::new(),
            pending_len: 0,
            scratch: BytesMut::new(),
            flushed: 0,
            last_flush_ms: now_ms,
            write_behind,
            file_len: 0,
            behind_from: 0,
            behind_to: 0,
        }
    }

    /// Directory spools: flushes and closes the current segment, then appends go to `name`.
    pub fn open_segment(&mut self, name: &str) -> io::Result<()> {
        self.flush()?;
        self.write_behind_now();
        crate::failpoint::io("spool.segment")?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))?;
        self.file = Some(Arc::new(file));
        (self.file_len, self.behind_from, self.behind_to) = (0, 0, 0);
        Ok(())
    }

    /// Directory spools: writes `name` beside the segments, atomically (temp + rename).
    pub fn write_beside(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        crate::failpoint::io("spool.beside")?;
        let tmp = self.path.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents)?;
        std::fs::rename(tmp, self.path.join(name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes handed to the OS so far.
    pub fn flushed(&self) -> u64 {
        self.flushed
    }

    /// Appends a copy of `bytes` (headers, generated data such as TS packets).
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.scratch.capacity() - self.scratch.len() < bytes.len() {
            self.seal();
            // Reused in place once its queued slices are written (after every read at
            // steady state); else the old allocation lives on in those slices until then.
            let size = SCRATCH.max(bytes.len());
            if !self.scratch.try_reclaim(size) {
                self.scratch = BytesMut::with_capacity(size);
            }
        }
        self.scratch.extend_from_slice(bytes);
        self.pending_len += bytes.len();
        self.flush_if_full()
    }

    /// Appends a payload: queued as it is (zero-copy) unless it is small, see [`INLINE_LIMIT`].
    pub fn append_bytes(&mut self, bytes: Bytes) -> io::Result<()> {
        if bytes.len() <= INLINE_LIMIT {
            return self.append(&bytes);
        }
        self.queue(bytes)
    }

    fn queue(&mut self, bytes: Bytes) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.seal();
        self.pending_len += bytes.len();
        self.pending.push(bytes);
        self.flush_if_full()
    }

    pub fn append_all(&mut self, pieces: &[Bytes]) -> io::Result<()> {
        for p in pieces {
            self.append_bytes(p.clone())?;
        }
        Ok(())
    }

    /// Moves the scratch bytes not yet queued into the queue, keeping file order.
    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.pending.push(self.scratch.split().freeze());
        }
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.pending_len >= FLUSH_BYTES || self.pending.len() >= FLUSH_PIECES {
            self.flush()?;
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
        self.seal();
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = self.file.as_deref().ok_or_else(no_segment)?;
        crate::failpoint::io("spool.write")?;
        write_all_vectored(file, &self.pending)?;
        self.flushed += self.pending_len as u64;
        self.file_len += self.pending_len as u64;
        self.pending.clear();
        self.pending_len = 0;
        if self.file_len - self.behind_to >= WRITE_BEHIND_BYTES {
            self.write_behind_now();
        }
        Ok(())
    }

    /// Asks the kernel to start writing out what it has of the current file, from the
    /// write-behind thread (see [`write_behind`]): the request can block in the block layer
    /// when the disk is busy, which must never stall a runtime worker (and with it every
    /// stream on it). `POSIX_FADV_DONTNEED` starts writeback of the dirty pages in the range
    /// and drops the clean ones; the range also covers the previous request's bytes, by now
    /// written, so a recording does not crowd the page cache either.
    fn write_behind_now(&mut self) {
        let Some(file) = self.file.as_ref().filter(|_| self.write_behind) else {
            return;
        };
        let len = self.file_len - self.behind_from;
        if let Some(len) = std::num::NonZeroU64::new(len) {
            write_behind(file.clone(), self.behind_from, len);
        }
        (self.behind_from, self.behind_to) = (self.behind_to, self.file_len);
    }

    /// Last flush at close, and writeback of the rest starts at once. No fsync here: finalize
    /// fsyncs the final file before it is catalogued.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.write_behind_now();
        Ok(())
    }
}

/// Hands one write-behind request to the process's write-behind thread (started on first use).
/// Requests are a few words each and a stream makes a handful per second, so the queue is
/// unbounded; if the thread cannot be started, write-behind is skipped (it is only advice:
/// finalize's fsync covers everything).
fn write_behind(file: Arc<File>, offset: u64, len: std::num::NonZeroU64) {
    type Request = (Arc<File>, u64, std::num::NonZeroU64);
    static QUEUE: OnceLock<Option<mpsc::Sender<Request>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("write-behind".into())
            .spawn(move || {
                for (file, offset, len) in rx {
                    let _ = rustix::fs::fadvise(
                        &*file,
                        offset,
                        Some(len),
                        rustix::fs::Advice::DontNeed,
                    );
                }
            })
            .ok()
            .map(|_| tx)
    });
    if let Some(q) = queue {
        let _ = q.send((file, offset, len));
    }
}

fn no_segment() -> io::Error {
    io::Error::other("no segment open in a directory spool")
}

/// `write_all` for a list of pieces: as few `writev` calls as the kernel allows.
fn write_all_vectored(mut file: &File, pieces: &[Bytes]) -> io::Result<()> {
    let (mut idx, mut off) = (0, 0);
    let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
    while idx < pieces.len() {
        let mut n = 0;
        for (i, p) in pieces[idx..].iter().take(MAX_IOVECS).enumerate() {
            iov[n] = IoSlice::new(if i == 0 { &p[off..] } else { p });
            n += 1;
        }
        let mut written = match file.write_vectored(&iov[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // Advance past what was written; a short write resumes mid-piece.
        while written > 0 {
            let rest = pieces[idx].len() - off;
            if written >= rest {
                written -= rest;
                idx += 1;
                off = 0;
            } else {
                off += written;
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers (copied) and payloads (queued) interleave in file order, across flushes, scratch
    /// refills and batches longer than one `writev`.
    #[test]
    fn pieces_reach_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut spool = Spool::create(&path, 0, true).unwrap();
        let mut expect = Vec::new();
        for i in 0..5000u32 {
            let header = i.to_be_bytes();
            spool.append(&header).unwrap();
            expect.extend_from_slice(&header);
            let payload = Bytes::from(vec![(i % 251) as u8; (i as usize * 7) % 300]);
            expect.extend_from_slice(&payload);
            spool.append_bytes(payload).unwrap();
            if i % 1000 == 999 {
                spool.append(&[0xab; 3000]).unwrap();
                expect.extend_from_slice(&[0xab; 3000]);
            }
            assert!(spool.pending_len < FLUSH_BYTES && spool.pending.len() < FLUSH_PIECES);
        }
        spool.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expect);
        assert_eq!(spool.flushed, expect.len() as u64);
    }

    #[test]
    fn nothing_is_written_before_a_batch_fills_or_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut spool = Spool::create(&path, 0, true).unwrap();
        spool.append_bytes(Bytes::from_static(b"abc")).unwrap();
        spool.append(b"de").unwrap();
        spool.maybe_flush(FLUSH_INTERVAL_MS - 1).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        spool.maybe_flush(FLUSH_INTERVAL_MS).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
    }
}
