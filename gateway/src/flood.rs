//! When a client that is told `rate_limited` has "kept sending": more than `limit` refused frames
//! within one window of [`FLOOD_WINDOW`], counted from the first refusal of the window. Frames
//! the limiter admits meanwhile do not reset the count — a flood at many times the allowed rate
//! is admitted a frame every few milliseconds, and resetting on those made 4004 unreachable.
//! Pure (the caller passes the time), so the rule is unit-tested on its own.

use std::time::{Duration, Instant};

/// How long refusals are counted together.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// Refusals of the current window.
#[derive(Debug, Default)]
pub struct Refusals {
    window_start: Option<Instant>,
    count: u32,
}

impl Refusals {
    /// Counts a refused frame at `now`; true once more than `limit` fell in one window.
    pub fn refuse(&mut self, now: Instant, limit: u32) -> bool {
        match self.window_start {
            Some(start) if now.duration_since(start) < FLOOD_WINDOW => self.count += 1,
            _ => {
                self.window_start = Some(now);
                self.count = 1;
            }
        }
        self.count > limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_caught_even_when_frames_are_admitted_in_between() {
        let mut refusals = Refusals::default();
        let start = Instant::now();
        // 10 refusals every 20 ms (the limiter admitting one frame each time, which does not
        // count): the 101st refusal, 200 ms in, closes.
        let mut closed_at = None;
        for i in 0..1_000u32 {
            let now = start + Duration::from_millis(u64::from(i / 10) * 20);
            if refusals.refuse(now, 100) {
                closed_at = Some(i);
                break;
            }
        }
        assert_eq!(closed_at, Some(100));
    }

    #[test]
    fn occasional_refusals_spread_over_windows_never_close() {
        let mut refusals = Refusals::default();
        let start = Instant::now();
        for i in 0..1_000u64 {
            // 50 refusals per 10 s window: well under a limit of 100.
            let now = start + Duration::from_millis(i * 200);
            assert!(!refusals.refuse(now, 100), "refusal {i}");
        }
    }
}
