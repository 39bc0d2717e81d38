//! Wire formats: everything vipflip reads from or writes to the network by hand.
//!
//! Parsing decides only whether bytes are *well-formed* (length, TTL, version, type, checksum);
//! whether a well-formed advert is *acceptable now* (VRID, owner, interval) is the state
//! machine's business in [`crate::vrrp`].

pub mod vrrp;

pub use vrrp::{AdvertRepr, Auth, Priority, VrId, VrrpVersion, VirtualAddrs};
