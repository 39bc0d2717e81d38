//! What an operator configures for one virtual router, and why a configuration is refused.

use core::time::Duration;
use std::net::IpAddr;

use vipflip_wire::{Auth, Priority, VirtualAddrs, VrId, VrrpVersion};

use super::timer::master_down_interval;

/// Priority 255: the router that owns the virtual addresses (RFC 5798 §5.2.4).
pub(super) const OWNER_PRIORITY: Priority = Priority(255);

/// The configuration of one virtual router (RFC 5798 §6.1 "Parameters per Virtual Router",
/// plus the keepalived knobs users bring). Checked by [`Instance::new`](super::Instance::new).
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent RFC and keepalived switches, named as operators know them; no state machine hides in them"
)]
pub struct InstanceConfig {
    /// `VRID` (RFC 5798 §5.2.3), 1..=255.
    pub vrid: VrId,
    /// Protocol version spoken and accepted; adverts of the other version are discarded.
    pub version: VrrpVersion,
    /// Configured `Priority` (RFC 5798 §5.2.4): 255 = this router owns the virtual addresses,
    /// 1..=254 otherwise. Tracking changes the *effective* priority with
    /// [`Command::SetPriority`](super::Command::SetPriority).
    pub priority: Priority,
    /// `Advertisement_Interval`: v3 10 ms..=40.95 s in whole centiseconds (RFC 5798 §5.2.7),
    /// v2 1..=255 whole seconds (RFC 3768 §5.3.7). Default 1 s.
    pub advert_interval: Duration,
    /// `Preempt_Mode` (RFC 5798 §6.1): whether a backup takes over from a lower-priority
    /// master. Default true. Ignored for the owner, which always preempts.
    pub preempt: bool,
    /// keepalived `preempt_delay`: for this long after startup (or after a fault clears), a
    /// backup treats lower-priority adverts as if `preempt` were off. Default 0.
    pub preempt_delay: Duration,
    /// `Accept_Mode` (RFC 5798 §6.1): whether a non-owner master accepts packets addressed to
    /// the virtual addresses. Default false, as the RFC says; the owner always accepts.
    pub accept: bool,
    /// The virtual addresses (one family). For IPv6 the first is the link-local address of the
    /// virtual router (RFC 5798 §5.2.9).
    pub virtual_addrs: VirtualAddrs,
    /// This router's primary address on the interface: the source of its adverts and the
    /// equal-priority tie-break (RFC 5798 §6.4.3). IPv6: the interface's link-local address.
    pub primary_addr: IpAddr,
    /// keepalived `lower_prio_no_advert`: when true, a master stays silent on a lower-priority
    /// advert instead of answering at once as RFC 9568 §6.4.3 asks. Default false.
    pub lower_prio_no_advert: bool,
    /// keepalived `higher_prio_send_advert`: a master that steps down for a better advert
    /// (higher priority, or equal priority from a higher address) first sends one advert of
    /// its own priority, so a master that had wrongly taken over hears a lower-priority
    /// advert and re-announces itself (keepalived: its `garp_lower_prio_repeat` GARPs), after
    /// a split brain in which ours were the last GARPs the hosts saw. Default false.
    pub higher_prio_send_advert: bool,
    /// Version 2 authentication (RFC 3768 §5.3.6), compared verbatim. Must be [`Auth::None`]
    /// for v3.
    pub auth: Auth,
    /// How long a graceful handoff waits for the new master before stepping down anyway.
    /// `None` = `Master_Down_Interval` at this router's own priority and interval.
    pub handoff_bound: Option<Duration>,
}

impl InstanceConfig {
    /// A v3 configuration with the RFC defaults: priority 100, 1 s interval, preempt on,
    /// accept off, no preempt delay, RFC 9568 answers to lower-priority adverts.
    pub fn new(vrid: VrId, primary_addr: IpAddr, virtual_addrs: VirtualAddrs) -> Self {
        Self {
            vrid,
            version: VrrpVersion::V3,
            priority: Priority(100),
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: false,
            virtual_addrs,
            primary_addr,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            auth: Auth::None,
            handoff_bound: None,
        }
    }

    /// Whether this router owns the virtual addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY
    }

    /// The handoff bound actually used (see [`InstanceConfig::handoff_bound`]).
    pub fn effective_handoff_bound(&self) -> Duration {
        self.handoff_bound.unwrap_or_else(|| {
            master_down_interval(self.version, self.priority, self.advert_interval)
        })
    }

    /// Checks every rule a configuration must satisfy before an instance runs it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid.0 == 0 {
            return Err(ConfigError::ZeroVrid);
        }
        if self.priority.0 == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        self.validate_interval()?;
        let is_v4 = match &self.virtual_addrs {
            VirtualAddrs::V4(addrs) if addrs.is_empty() => return Err(ConfigError::NoVirtualAddrs),
            VirtualAddrs::V6(addrs) if addrs.is_empty() => return Err(ConfigError::NoVirtualAddrs),
            VirtualAddrs::V4(_) => true,
            // RFC 5798 §5.2.9 wants the virtual router's link-local address first; keepalived
            // sends whatever is configured and refuses adverts whose address count differs,
            // so the list is taken as given (the configuration layer warns).
            VirtualAddrs::V6(_) => false,
        };
        if is_v4 != self.primary_addr.is_ipv4() {
            return Err(ConfigError::PrimaryFamilyMismatch {
                primary: self.primary_addr,
            });
        }
        match self.version {
            // RFC 3768 is IPv4 only.
            VrrpVersion::V2 if !is_v4 => return Err(ConfigError::V2NeedsIpv4),
            VrrpVersion::V3 if self.auth != Auth::None => return Err(ConfigError::AuthOnV3),
            _ => {}
        }
        if self.handoff_bound == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroHandoffBound);
        }
        Ok(())
    }

    fn validate_interval(&self) -> Result<(), ConfigError> {
        let (min, max, unit) = match self.version {
            // RFC 5798 §5.2.7: 12 bits of centiseconds.
            VrrpVersion::V3 => (
                Duration::from_millis(10),
                Duration::from_millis(40_950),
                Duration::from_millis(10),
            ),
            // RFC 3768 §5.3.7: 8 bits of seconds.
            VrrpVersion::V2 => (
                Duration::from_secs(1),
                Duration::from_secs(255),
                Duration::from_secs(1),
            ),
        };
        let got = self.advert_interval;
        if got < min || got > max {
            return Err(ConfigError::IntervalOutOfRange { got, min, max });
        }
        if !got.as_nanos().is_multiple_of(unit.as_nanos()) {
            return Err(ConfigError::IntervalNotMultiple { got, unit });
        }
        Ok(())
    }
}

/// Why an [`InstanceConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("VRID 0 is not valid (RFC 5798 §5.2.3: 1..=255)")]
    ZeroVrid,
    #[error("priority 0 is reserved for a resigning master (RFC 5798 §5.2.4)")]
    ZeroPriority,
    #[error("advert interval {got:?} is outside {min:?}..={max:?} for this VRRP version")]
    IntervalOutOfRange {
        got: Duration,
        min: Duration,
        max: Duration,
    },
    #[error("advert interval {got:?} is not a whole multiple of {unit:?}, the wire's unit")]
    IntervalNotMultiple { got: Duration, unit: Duration },
    #[error("a virtual router needs at least one virtual address")]
    NoVirtualAddrs,
    #[error("primary address {primary} is not of the virtual addresses' family")]
    PrimaryFamilyMismatch { primary: IpAddr },
    #[error("VRRPv2 (RFC 3768) carries IPv4 addresses only")]
    V2NeedsIpv4,
    #[error("VRRPv3 has no authentication (RFC 5798 §9); auth must be None")]
    AuthOnV3,
    #[error("a zero handoff bound would step down before any new master could be heard")]
    ZeroHandoffBound,
}
