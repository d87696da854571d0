//! A microsecond-precise timer for open-loop pacing: a Linux timerfd registered with the
//! runtime. tokio's own timer has millisecond ticks, so a request due in 300 µs would be
//! sent up to a millisecond late, and that lateness would be charged to the server in every
//! intended-start latency.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A one-shot relative timer.
#[derive(Debug)]
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
    armed: bool,
}

impl PreciseTimer {
    /// A disarmed timer; must be made inside a tokio runtime.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: timerfd_create has no memory arguments; the result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the descriptor is owned by the AsyncFd until it drops, and `as_raw_fd`
        // always returns the same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE)? };
        Ok(PreciseTimer { fd, armed: false })
    }

    /// Sets the timer to fire `after` from now (at least 1 µs), replacing any earlier setting.
    pub fn arm(&mut self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_micros(1));
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and pointer to a live itimerspec; old value not wanted.
        let result =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &value, std::ptr::null_mut()) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = true;
        Ok(())
    }

    /// Waits until the armed timer fires; pending forever when disarmed.
    pub async fn fired(&mut self) -> io::Result<()> {
        if !self.armed {
            return std::future::pending().await;
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a live 8-byte buffer.
            let read = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                )
            };
            if read == 8 {
                self.armed = false;
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn fires_after_the_delay_and_not_before() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut timer = PreciseTimer::new().unwrap();
            for micros in [300u64, 2_500] {
                let start = Instant::now();
                timer.arm(Duration::from_micros(micros)).unwrap();
                timer.fired().await.unwrap();
                let elapsed = start.elapsed();
                assert!(elapsed >= Duration::from_micros(micros), "{elapsed:?}");
                // Generous: a loaded 2-core machine may schedule late.
                assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
            }
        });
    }
}
