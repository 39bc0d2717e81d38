//! Health verdicts with a hold-down, sans-IO (time is passed in): a real server that went
//! down is let back only once it has been up for the hold-down since its last failure. A
//! flapping check then keeps the server out instead of swapping tables at each flap, and
//! active-active directors, which check on their own, agree on the table again as soon as
//! they agree on the failure.

use core::time::Duration;
use std::time::Instant;

/// What to report of one server's checks, after rise/fall.
#[derive(Debug, Clone)]
pub struct HoldDown {
    hold: Duration,
    /// What was reported last (`None`: nothing yet).
    reported: Option<bool>,
    /// When the checks last said "down".
    last_down: Option<Instant>,
}

impl HoldDown {
    /// `hold` zero: every verdict goes through at once.
    pub fn new(hold: Duration) -> Self {
        Self {
            hold,
            reported: None,
            last_down: None,
        }
    }

    /// The checks say `healthy` at `now` (rise/fall's status after each run, changed or
    /// not): the verdict to report now, if it changes what was reported. "Down" goes through
    /// at once; "up" waits until `hold` has passed since the last "down".
    pub fn verdict(&mut self, healthy: bool, now: Instant) -> Option<bool> {
        if !healthy {
            self.last_down = Some(now);
        }
        let held = healthy
            && self
                .last_down
                .is_some_and(|down| now.saturating_duration_since(down) < self.hold);
        if held || self.reported == Some(healthy) {
            return None;
        }
        self.reported = Some(healthy);
        Some(healthy)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use super::HoldDown;

    /// Feeds `(ms, healthy)` and returns what would be reported at each, as a string: "U"
    /// up, "D" down, "." nothing.
    fn trace(hold_ms: u64, runs: &[(u64, bool)]) -> String {
        #[expect(
            clippy::disallowed_methods,
            reason = "the origin of the test's virtual time"
        )]
        let t0 = Instant::now();
        let mut hold = HoldDown::new(Duration::from_millis(hold_ms));
        runs.iter()
            .map(
                |&(ms, healthy)| match hold.verdict(healthy, t0 + Duration::from_millis(ms)) {
                    Some(true) => 'U',
                    Some(false) => 'D',
                    None => '.',
                },
            )
            .collect()
    }

    #[test]
    fn without_a_hold_down_every_change_goes_through() {
        assert_eq!(
            trace(0, &[(0, true), (100, false), (200, true), (300, true)]),
            "UDU."
        );
    }

    #[test]
    fn the_first_up_goes_through_at_once() {
        assert_eq!(trace(2000, &[(0, true), (100, true)]), "U.");
    }

    #[test]
    fn down_goes_through_at_once_and_up_waits_for_the_hold_down() {
        assert_eq!(
            trace(
                1000,
                &[
                    (0, true),
                    (100, false),
                    (200, true),
                    (900, true),
                    (1100, true),
                    (1200, true)
                ]
            ),
            "UD..U."
        );
    }

    #[test]
    fn a_flap_restarts_the_hold_down() {
        // Down at 100, up at 200, down again at 800: the up at 1500 is within 1 s of 800.
        assert_eq!(
            trace(
                1000,
                &[
                    (100, false),
                    (200, true),
                    (800, false),
                    (1500, true),
                    (1800, true)
                ]
            ),
            "D...U"
        );
    }
}
