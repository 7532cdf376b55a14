//! A real small file system that the tests fill up and make read-only: a tmpfs mounted on a
//! fresh directory (needs root, as CI runs; `scripts/test.sh` says so when it is not).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted on a temp dir; unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
    filler: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` (rounded up to pages). Panics when not root: the fault tests
    /// must not pass by doing nothing.
    pub fn mount(bytes: u64) -> Self {
        assert!(
            is_root(),
            "the fault tests mount a tmpfs and need root (CI runs as root)"
        );
        let dir = tempfile::Builder::new()
            .prefix("lt-tmpfs-")
            .tempdir()
            .unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("tmpfs")
            .arg(dir.path()));
        let filler = dir.path().join(".filler");
        Self { dir, filler }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes zeros into a filler file until the file system is full (ENOSPC); returns how
    /// many bytes it took.
    pub fn fill(&self) -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .expect("open the filler");
        let block = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", self.filler.display()),
            }
        }
        // Single bytes too: the last partial page.
        while let Ok(1) = f.write(&[0]) {
            n += 1;
        }
        n
    }

    /// Removes the filler: the space is back.
    pub fn free(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }

    /// Remounts read-only (every write fails with EROFS) ...
    pub fn read_only(&self) {
        run(Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path()));
    }

    /// ... and writable again.
    pub fn writable(&self) {
        run(Command::new("mount")
            .args(["-o", "remount,rw"])
            .arg(self.dir.path()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server of a failed test may still hold files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn is_root() -> bool {
    // No libc dependency: the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
