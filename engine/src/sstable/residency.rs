//! A budget on table pages mapped into this process.
//!
//! Tables are read through mmap, and every page a read touches stays mapped, counted in the
//! process's resident memory, until the mapping goes. Left alone, resident memory would grow
//! with the data set. How much one read maps is the kernel's choice (fault-around, large
//! page-cache folios on recent kernels), so the budget measures instead of estimating: every
//! [`SAMPLE_EVERY_MISSES`] block reads from a mapping it reads the process's file-backed
//! resident size (`/proc/self/statm`, a few microseconds), and when that exceeds `bytes_max`
//! an epoch ends. Each table drops its mapped pages (`MADV_DONTNEED`) the next time it
//! reads after an epoch ends. The data stays in the kernel's page cache, so a later read
//! costs a minor fault, not a disk read.
//!
//! The file-backed figure includes the program's own code pages, so the budget covers
//! those too. Where `/proc` is unavailable, each read is charged as one 64 KiB fault.

use std::sync::atomic::{AtomicU64, Ordering};

/// Block reads from mappings between two samples of resident memory.
pub const SAMPLE_EVERY_MISSES: u64 = 64;

/// What a read is assumed to map when resident memory cannot be measured.
const ESTIMATED_FAULT_BYTES: u64 = 64 * 1024;

/// Shared by every table of a database (it lives in the block cache).
#[derive(Debug)]
pub struct MappedBudget {
    bytes_max: u64,
    misses: AtomicU64,
    estimated_bytes: AtomicU64,
    epoch: AtomicU64,
}

impl MappedBudget {
    /// A budget of `bytes_max` file-backed resident bytes; `u64::MAX` never releases.
    pub fn new(bytes_max: u64) -> MappedBudget {
        MappedBudget {
            bytes_max: bytes_max.max(1),
            misses: AtomicU64::new(0),
            estimated_bytes: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// Records one block read from a mapping; ends the epoch when resident file-backed
    /// memory is over budget.
    pub fn charge_read(&self) {
        if self.bytes_max == u64::MAX {
            return;
        }
        let misses = self.misses.fetch_add(1, Ordering::Relaxed) + 1;
        if misses % SAMPLE_EVERY_MISSES != 0 {
            return;
        }
        let resident = resident_file_bytes().unwrap_or_else(|| {
            self.estimated_bytes.fetch_add(
                SAMPLE_EVERY_MISSES * ESTIMATED_FAULT_BYTES,
                Ordering::Relaxed,
            )
        });
        if resident > self.bytes_max {
            self.estimated_bytes.store(0, Ordering::Relaxed);
            self.epoch.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current epoch; a table that last released in an older one releases again.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }
}

/// File-backed and shared resident bytes of this process, if the OS tells.
fn resident_file_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // statm: size resident shared text lib data dt, in pages; "shared" is file-backed
        // plus shared-memory resident pages.
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let shared_pages: u64 = statm.split_whitespace().nth(2)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(shared_pages * u64::try_from(page_size).ok()?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_budget_never_ends_an_epoch() {
        let budget = MappedBudget::new(u64::MAX);
        for _ in 0..10 * SAMPLE_EVERY_MISSES {
            budget.charge_read();
        }
        assert_eq!(budget.epoch(), 0);
    }

    #[test]
    fn a_budget_below_what_is_resident_ends_an_epoch_at_each_sample() {
        // The test binary's own code pages alone exceed one byte.
        let budget = MappedBudget::new(1);
        for _ in 0..3 * SAMPLE_EVERY_MISSES {
            budget.charge_read();
        }
        assert_eq!(budget.epoch(), 3);
    }
}
