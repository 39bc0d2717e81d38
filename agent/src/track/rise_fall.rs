//! keepalived's rise/fall counter of a `vrrp_script` (`vrrp_script_child_thread`), pure.

/// Turns a script's run results into its status: `fall` failures in a row make a good script
/// failing, `rise` successes in a row make a failing script good.
///
/// Like keepalived, the very first result decides at once (its counter starts at
/// `rise − 1`: "one success is enough", and a first failure leaves it failing), so an
/// instance does not wait `rise` intervals at start-up.
///
/// keepalived keeps one number, `result`, in `0..rise + fall`: good when `result ≥ rise`.
/// A success while failing counts up to `rise` then jumps to the top; a failure while good
/// counts down to `rise` then drops to 0. That is exactly "N in a row".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    result: u32,
    /// `None` until the first result.
    status: Option<bool>,
}

impl RiseFall {
    /// `rise` and `fall` below 1 are taken as 1 (as keepalived does).
    pub fn new(rise: u32, fall: u32) -> Self {
        let rise = rise.max(1);
        Self {
            rise,
            fall: fall.max(1),
            result: rise - 1,
            status: None,
        }
    }

    /// The current status: `Some(true)` good, `Some(false)` failing, `None` before the first
    /// result.
    pub fn status(&self) -> Option<bool> {
        self.status
    }

    /// Records one run; returns the new status when it changed (always on the first run).
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        let top = self.rise + self.fall - 1;
        let before = self.status;
        if ok {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else {
                self.result = top;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            self.result = 0;
        }
        // From the initial `rise − 1`, one success reaches the top and one failure 0: the
        // first result decides.
        let now = self.result >= self.rise;
        self.status = Some(now);
        (before != Some(now)).then_some(now)
    }
}

#[cfg(test)]
mod tests {
    use super::RiseFall;

    /// Feeds `runs` ("+" success, "-" failure) and returns the status after each, as a string:
    /// "G" good, "F" failing.
    fn trace(rise: u32, fall: u32, runs: &str) -> String {
        let mut rf = RiseFall::new(rise, fall);
        runs.chars()
            .map(|c| {
                rf.record(c == '+');
                match rf.status() {
                    Some(true) => 'G',
                    Some(false) => 'F',
                    None => '?',
                }
            })
            .collect()
    }

    #[test]
    fn first_result_decides_at_once() {
        assert_eq!(trace(3, 3, "+"), "G");
        assert_eq!(trace(3, 3, "-"), "F");
        let mut rf = RiseFall::new(5, 5);
        assert_eq!(rf.status(), None);
        assert_eq!(rf.record(false), Some(false));
    }

    #[test]
    fn rise_one_fall_one_follows_every_run() {
        assert_eq!(trace(1, 1, "+-+--++"), "GFGFFGG");
    }

    #[test]
    fn fall_failures_in_a_row_make_it_failing() {
        // fall 3: two failures are absorbed, a success resets the count, three in a row fail.
        assert_eq!(trace(1, 3, "+--+---"), "GGGGGGF");
    }

    #[test]
    fn rise_successes_in_a_row_make_it_good() {
        // rise 2: after the first failure, one success is not enough, a failure resets.
        assert_eq!(trace(2, 1, "-+-++"), "FFFFG");
    }

    #[test]
    fn rise_and_fall_together() {
        assert_eq!(trace(2, 2, "+-+--+++--"), "GGGGFFGGGF");
    }

    #[test]
    fn record_reports_only_changes() {
        let mut rf = RiseFall::new(2, 2);
        let changes: Vec<Option<bool>> = [true, true, false, false, false, true, true]
            .into_iter()
            .map(|ok| rf.record(ok))
            .collect();
        assert_eq!(
            changes,
            [Some(true), None, None, Some(false), None, None, Some(true)]
        );
    }

    #[test]
    fn zero_rise_and_fall_count_as_one() {
        assert_eq!(trace(0, 0, "+-+"), "GFG");
    }
}
