//! Counters, and the reasons a well-formed advert is not acceptable now.

use core::time::Duration;

use vipflip_wire::{Priority, VrId, VrrpVersion};

/// Why a well-formed advert was discarded by the state machine (RFC 5798 §7.1 and RFC 3768
/// §7.1 checks that need the instance's configuration or state). Each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    #[error("instance is not running (Initialize or Fault)")]
    NotRunning,
    #[error("advert is {got:?}, instance speaks {want:?}")]
    WrongVersion { got: VrrpVersion, want: VrrpVersion },
    #[error("advert is for VRID {}, instance is VRID {}", got.0, want.0)]
    WrongVrid { got: VrId, want: VrId },
    #[error("advert or its source is not of the instance's address family")]
    WrongFamily,
    #[error("advert came from our own primary address")]
    FromSelf,
    #[error("v2 advert interval {got:?} differs from ours {want:?} (RFC 3768 §7.1)")]
    IntervalMismatch { got: Duration, want: Duration },
    #[error("v2 authentication does not match (RFC 3768 §7.1)")]
    AuthMismatch,
    #[error("v2 advert's addresses differ from ours and it is not from the owner (RFC 3768 §7.1)")]
    AddressMismatch,
    #[error("we own the addresses (priority 255); advert with priority {} ignored (RFC 5798 §7.1)", from_priority.0)]
    WeAreOwner { from_priority: Priority },
}

/// The discard reasons without their data, to index counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscardKind {
    NotRunning,
    WrongVersion,
    WrongVrid,
    WrongFamily,
    FromSelf,
    IntervalMismatch,
    AuthMismatch,
    AddressMismatch,
    WeAreOwner,
}

impl DiscardKind {
    /// Every kind, in counter order.
    pub const ALL: [DiscardKind; 9] = [
        DiscardKind::NotRunning,
        DiscardKind::WrongVersion,
        DiscardKind::WrongVrid,
        DiscardKind::WrongFamily,
        DiscardKind::FromSelf,
        DiscardKind::IntervalMismatch,
        DiscardKind::AuthMismatch,
        DiscardKind::AddressMismatch,
        DiscardKind::WeAreOwner,
    ];

    /// A stable `snake_case` name, e.g. for a metrics label (`wrong_vrid`).
    pub fn label(self) -> &'static str {
        match self {
            DiscardKind::NotRunning => "not_running",
            DiscardKind::WrongVersion => "wrong_version",
            DiscardKind::WrongVrid => "wrong_vrid",
            DiscardKind::WrongFamily => "wrong_family",
            DiscardKind::FromSelf => "from_self",
            DiscardKind::IntervalMismatch => "interval_mismatch",
            DiscardKind::AuthMismatch => "auth_mismatch",
            DiscardKind::AddressMismatch => "address_mismatch",
            DiscardKind::WeAreOwner => "we_are_owner",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl Discard {
    /// The counter this discard increments.
    pub fn kind(&self) -> DiscardKind {
        match self {
            Self::NotRunning => DiscardKind::NotRunning,
            Self::WrongVersion { .. } => DiscardKind::WrongVersion,
            Self::WrongVrid { .. } => DiscardKind::WrongVrid,
            Self::WrongFamily => DiscardKind::WrongFamily,
            Self::FromSelf => DiscardKind::FromSelf,
            Self::IntervalMismatch { .. } => DiscardKind::IntervalMismatch,
            Self::AuthMismatch => DiscardKind::AuthMismatch,
            Self::AddressMismatch => DiscardKind::AddressMismatch,
            Self::WeAreOwner { .. } => DiscardKind::WeAreOwner,
        }
    }
}

/// Counters of one instance, readable with [`Instance::stats`](super::Instance::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// State transitions (each logged as `from -> to (cause)`).
    pub transitions: u64,
    /// Adverts handed to the caller to send, priority 0 included.
    pub adverts_sent: u64,
    /// Adverts that passed every acceptance check.
    pub adverts_accepted: u64,
    /// Lower-priority adverts a preempting backup discarded (RFC 5798 §6.4.2); normal while
    /// preempting, so not a [`Discard`].
    pub lower_priority_ignored: u64,
    /// v3 adverts whose address list differs from ours: logged, then processed (RFC 5798
    /// §7.1 makes this a SHOULD-log, not a discard).
    pub address_mismatch: u64,
    discarded: [u64; DiscardKind::ALL.len()],
}

impl Stats {
    /// Adverts discarded for `kind`.
    pub fn discarded(&self, kind: DiscardKind) -> u64 {
        self.discarded[kind.index()]
    }

    /// Adverts discarded for any reason.
    pub fn discarded_total(&self) -> u64 {
        self.discarded.iter().sum()
    }

    pub(super) fn count_discard(&mut self, kind: DiscardKind) {
        self.discarded[kind.index()] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::DiscardKind;

    #[test]
    fn discard_labels_are_distinct_snake_case() {
        let labels: Vec<&str> = DiscardKind::ALL.iter().map(|k| k.label()).collect();
        for (i, label) in labels.iter().enumerate() {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
            assert!(!labels[..i].contains(label), "{label} twice");
        }
    }
}
