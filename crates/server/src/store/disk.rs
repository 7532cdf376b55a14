//! Local-disk storage: where spool and final files live, name sanitising, durable writes.
//!
//! Layout under `data_dir`:
//! - `catalog.db`                          the SQLite catalogue
//! - `spool/{file_id}.{ext}.part`          recordings being written (crash-safe forms)
//! - `records/{app}/{stream}/{YYYY-MM-DD}/{stream}_{start}_{end}_{id8}.{ext}`   finished files
//!
//! Every path component that comes from the network (app, stream) goes through [`sanitize`],
//! so no stream name can escape `data_dir` or collide with `.`/`..`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

/// Longest sanitised path component we produce (bytes); longer names are cut and hashed.
pub const MAX_COMPONENT_LEN: usize = 96;

#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join("spool"))?;
        fs::create_dir_all(root.join("records"))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    pub fn spool_path(&self, file_id: &str, ext: &str) -> PathBuf {
        self.spool_dir().join(format!("{file_id}.{ext}.part"))
    }

    /// The relative path (stored in the catalogue) of a finished file.
    pub fn record_rel_path(
        &self,
        app: &str,
        stream: &str,
        start_ms: i64,
        end_ms: i64,
        file_id: &str,
        ext: &str,
    ) -> PathBuf {
        let s = sanitize(stream);
        let day = &utc_stamp(start_ms)[..10];
        let short: String = file_id
            .rsplit('_')
            .next()
            .unwrap_or(file_id)
            .chars()
            .take(8)
            .collect();
        PathBuf::from("records")
            .join(sanitize(app))
            .join(&s)
            .join(day)
            .join(format!(
                "{s}_{}_{}_{short}.{ext}",
                utc_stamp(start_ms),
                utc_stamp(end_ms)
            ))
    }

    /// Resolves a catalogue path, refusing anything that is not a plain relative path inside
    /// the data dir (defence in depth: the catalogue only holds paths we built).
    pub fn resolve(&self, rel: &str) -> Option<PathBuf> {
        let p = Path::new(rel);
        p.components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| self.root.join(p))
    }
}

/// Makes a network-supplied name safe as one path component: keeps `[A-Za-z0-9_.-]`, writes
/// every other byte as `%XX` (injective, so distinct streams never share a directory), never
/// yields an empty, dot-leading (hidden, `.`, `..`) name, and bounds the length.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        match b {
            b'.' if i == 0 => out.push_str("%2E"),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    if out.len() > MAX_COMPONENT_LEN {
        // `~` never appears otherwise (it is escaped), so cut names cannot collide with others.
        let h = fnv1a(name.as_bytes());
        let mut cut = MAX_COMPONENT_LEN - 17;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(&format!("~{h:016x}"));
    }
    out
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `2026-11-24T13-05-01.123Z`: sortable, readable, and free of `:` for portable file names.
pub fn utc_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}-{:02}-{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// Howard Hinnant's days → civil date algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Space available to us on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The free-space floor (`[storage] min_free_bytes`): below it no recording starts and running
/// ones stop cleanly, which keeps room for the catalogue and for finalizing what was written.
/// Refreshed by a background task (and at each publish) so the per-frame check is one load.
#[derive(Debug)]
pub struct DiskGuard {
    root: PathBuf,
    floor: u64,
    free: std::sync::atomic::AtomicU64,
    /// How many readings were taken: a reading after a given one is news.
    readings: std::sync::atomic::AtomicU64,
}

impl DiskGuard {
    pub fn new(root: &Path, floor: u64) -> Self {
        let g = Self {
            root: root.to_path_buf(),
            floor,
            free: std::sync::atomic::AtomicU64::new(u64::MAX),
            readings: std::sync::atomic::AtomicU64::new(0),
        };
        g.refresh();
        g
    }

    /// Re-reads the free space; returns it.
    pub fn refresh(&self) -> u64 {
        // If statvfs fails we cannot know: do not block recording on it.
        let free = free_bytes(&self.root).unwrap_or(u64::MAX);
        self.free.store(free, std::sync::atomic::Ordering::Relaxed);
        self.readings
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        free
    }

    /// The number of the latest reading (see [`DiskGuard::refresh`]).
    pub fn reading(&self) -> u64 {
        self.readings.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn free(&self) -> u64 {
        self.free.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Below the floor: recording must not start or go on.
    pub fn low(&self) -> bool {
        self.free() < self.floor
    }
}

/// fsync a directory so a create/rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `prefix` then the spool's byte ranges into a new file at `dest` (in-kernel copy via
/// `copy_file_range` where the OS has it), fsyncs the file and its directory, and returns the
/// final size. The spool is left untouched, so a crash here is recovered by doing it again.
pub fn materialize(
    spool: &Path,
    prefix: &[u8],
    ranges: &[(u64, u64)],
    dest: &Path,
) -> io::Result<u64> {
    let dir = dest
        .parent()
        .ok_or_else(|| io::Error::other("no parent dir"))?;
    crate::failpoint::io("finalize.copy")?;
    fs::create_dir_all(dir)?;
    let mut src = File::open(spool)?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dest)?;
    let result = (|| {
        out.write_all(prefix)?;
        let mut total = prefix.len() as u64;
        for &(off, len) in ranges {
            src.seek(SeekFrom::Start(off))?;
            let copied = io::copy(&mut Read2::take(&mut src, len), &mut out)?;
            if copied != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("spool {} ended early at {}", spool.display(), off + copied),
                ));
            }
            total += copied;
        }
        crate::failpoint::io("finalize.fsync")?;
        out.sync_all()?;
        Ok(total)
    })();
    match result {
        Ok(total) => {
            sync_dir(dir)?;
            Ok(total)
        }
        Err(e) => {
            drop(out);
            let _ = fs::remove_file(dest);
            Err(e)
        }
    }
}

/// No room for a finalized copy: the spool itself (a valid FLV or fragmented MP4) becomes the
/// final file, by rename, which needs no space. Returns its size.
pub fn adopt_spool(spool: &Path, dest: &Path) -> io::Result<u64> {
    let dir = dest
        .parent()
        .ok_or_else(|| io::Error::other("no parent dir"))?;
    crate::failpoint::io("finalize.adopt")?;
    fs::create_dir_all(dir)?;
    fs::rename(spool, dest)?;
    File::open(dest)?.sync_all()?;
    sync_dir(dir)?;
    if let Some(spool_dir) = spool.parent() {
        sync_dir(spool_dir)?;
    }
    Ok(fs::metadata(dest)?.len())
}

/// Writes `head` over the first bytes of `path` and cuts it to `len` (a torn tail left by a
/// crash goes): the in-place finalize of a spool whose head had room reserved for it.
pub fn rewrite_head(path: &Path, head: &[u8], len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    crate::failpoint::io("finalize.head")?;
    let f = OpenOptions::new().write(true).open(path)?;
    f.write_all_at(head, 0)?;
    if f.metadata()?.len() != len {
        f.set_len(len)?;
    }
    Ok(())
}

// `io::copy` specialises `Take<&mut File>` → `File` into copy_file_range on Linux.
use std::io::Read as Read2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_names_inside_one_component() {
        for evil in [
            "../x",
            "..",
            ".",
            "a/b",
            "/etc/passwd",
            "",
            "a\\b",
            "x\0y",
            ".hidden",
        ] {
            let s = sanitize(evil);
            assert!(!s.is_empty());
            assert!(!s.starts_with('.'), "{evil} -> {s}");
            assert!(
                !s.contains('/') && !s.contains('\\') && !s.contains('\0'),
                "{s}"
            );
            assert_eq!(Path::new(&s).components().count(), 1);
        }
        assert_eq!(sanitize("room_42-a.b"), "room_42-a.b");
        assert_eq!(sanitize("../x"), "%2E.%2Fx");
        assert_eq!(sanitize("test"), "test");
        let long = "x".repeat(500);
        assert!(sanitize(&long).len() <= MAX_COMPONENT_LEN);
        assert_ne!(sanitize(&long), sanitize(&"x".repeat(501)));
    }

    #[test]
    fn distinct_names_for_distinct_streams() {
        assert_ne!(sanitize("a/b"), sanitize("a_b"));
        assert_ne!(sanitize("a b"), sanitize("a%20b"));
        assert_ne!(sanitize(""), sanitize("_"));
    }

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "1970-01-01T00-00-00.000Z");
        assert_eq!(utc_stamp(1_471_850_187_042), "2016-08-22T07-16-27.042Z");
    }

    #[test]
    fn resolve_refuses_escapes() {
        let s = Storage {
            root: "/data".into(),
        };
        assert!(s.resolve("records/a/b.mp4").is_some());
        assert!(s.resolve("../etc/passwd").is_none());
        assert!(s.resolve("/etc/passwd").is_none());
    }
}
