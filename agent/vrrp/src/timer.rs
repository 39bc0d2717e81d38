//! Timers as data, and the RFC timer formulas.
//!
//! An [`Instance`](super::Instance) never stores a timer apart from the state it belongs to:
//! each deadline lives in the state variant that uses it, so leaving the state cancels it.
//!
//! | timer | lives in | fires when |
//! |---|---|---|
//! | [`Timer::Adver`] | Master | it is time for the next periodic advert |
//! | [`Timer::MasterDown`] | Backup | the master has been silent for `Master_Down_Interval` |
//! | [`Timer::PreemptDelay`] | Backup | the post-startup preemption hold-down ends |
//! | [`Timer::HandoffBound`] | Master, handing off | no new master was heard in time |

use core::time::Duration;

use vipflip_wire::{Priority, VrrpVersion};

/// The deadlines an instance can be waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// `Adver_Timer` (RFC 5798 §6.2): fires every `Advertisement_Interval` while master.
    Adver,
    /// `Master_Down_Timer` (RFC 5798 §6.2): fires in Backup when no acceptable advert arrived
    /// for `Master_Down_Interval` (or for `Skew_Time` after the master resigned).
    MasterDown,
    /// keepalived `preempt_delay`: fires `preempt_delay` after a backup started; until then it
    /// treats lower-priority adverts as if preemption were off.
    PreemptDelay,
    /// Fires when a graceful handoff heard no new master within the configured bound; the
    /// master then steps down anyway.
    HandoffBound,
}

impl Timer {
    /// Every timer, in the order ties are broken when several are due at once.
    pub const ALL: [Timer; 4] = [
        Timer::MasterDown,
        Timer::PreemptDelay,
        Timer::HandoffBound,
        Timer::Adver,
    ];
}

/// `Skew_Time` (RFC 9568 §6.1): how much later than `3 × Master_Adver_Interval` a backup of
/// this `priority` declares the master down, so that higher priorities win the race.
///
/// - v3: `((256 − Priority) × Master_Adver_Interval) / 256`, with `Master_Adver_Interval` in
///   centiseconds as learned from the master's advert.
/// - v2 (RFC 3768 §6.1): `(256 − Priority) / 256` seconds, whatever the interval.
///
/// Rounding: the formula is evaluated exactly in nanoseconds and rounded down there. RFC 9568
/// states it in centiseconds but gives no integer-division rule; truncating to whole
/// centiseconds (as FRR does) would make `Skew_Time` 0 for *every* priority at a 10 ms interval
/// and lose the priority ordering the skew exists to provide. v2 results are exact (multiples
/// of 1/256 s = 3.906 25 ms); v3 results are within 0.5 ns of the real value.
pub fn skew_time(version: VrrpVersion, priority: Priority, master_adver_int: Duration) -> Duration {
    let weight = 256 - u128::from(priority.0);
    let base = match version {
        VrrpVersion::V2 => Duration::from_secs(1),
        VrrpVersion::V3 => master_adver_int,
    };
    nanos(base.as_nanos() * weight / 256)
}

/// `Master_Down_Interval` (RFC 9568 §6.1): `3 × Master_Adver_Interval + Skew_Time`, the time a
/// backup waits for an advert before it declares the master down. For v2 the interval is the
/// backup's own `Advertisement_Interval` (RFC 3768 §6.1), which every accepted advert matches.
pub fn master_down_interval(
    version: VrrpVersion,
    priority: Priority,
    master_adver_int: Duration,
) -> Duration {
    master_adver_int.saturating_mul(3) + skew_time(version, priority, master_adver_int)
}

/// A nanosecond count as a `Duration`; saturates rather than panics (intervals are at most
/// 40.95 s, so saturation cannot happen for values this module computes).
fn nanos(ns: u128) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}
