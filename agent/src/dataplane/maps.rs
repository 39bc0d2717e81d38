//! Map names, key conversions and the typed view of `VIPS` values.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use aya::maps::{Map, MapData};
use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, PeerKey, STATS_COUNTERS, Stats, VipAction, VipEntry, VipKey,
};

use super::DataplaneError;

/// The maps of the XDP program, by the names they are pinned under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapName {
    Vips,
    Vrids,
    Peers,
    Stats,
    VridStats,
    VipFilter,
    Services,
    LbTables,
    Reals,
    Tunnels,
    Flows,
    LbCursors,
    FlowBudget,
}

impl MapName {
    pub const ALL: [MapName; 13] = [
        MapName::Vips,
        MapName::Vrids,
        MapName::Peers,
        MapName::Stats,
        MapName::VridStats,
        MapName::VipFilter,
        MapName::Services,
        MapName::LbTables,
        MapName::Reals,
        MapName::Tunnels,
        MapName::Flows,
        MapName::LbCursors,
        MapName::FlowBudget,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MapName::Vips => "VIPS",
            MapName::Vrids => "VRIDS",
            MapName::Peers => "PEERS",
            MapName::Stats => "STATS",
            MapName::VridStats => "VRID_STATS",
            MapName::VipFilter => "VIP_FILTER",
            MapName::Services => "SERVICES",
            MapName::LbTables => "LB_TABLES",
            MapName::Reals => "REALS",
            MapName::Tunnels => "TUNNELS",
            MapName::Flows => "FLOWS",
            MapName::LbCursors => "LB_CURSORS",
            MapName::FlowBudget => "FLOW_BUDGET",
        }
    }
}

impl fmt::Display for MapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What this host does with traffic to a VIP: the typed form of a `VIPS` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// This host is master (or owner): deliver locally.
    Local { vrid: u8 },
    /// Another router owns the VIP: forward on-wire to it by MAC rewrite.
    Forward {
        vrid: u8,
        ifindex: u32,
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
    },
    /// A backup that must not accept traffic for the VIP (RFC 5798 §6.4.2).
    Drop { vrid: u8 },
}

impl Ownership {
    pub fn entry(self) -> VipEntry {
        match self {
            Ownership::Local { vrid } => VipEntry::local(vrid),
            Ownership::Drop { vrid } => VipEntry::drop(vrid),
            Ownership::Forward {
                vrid,
                ifindex,
                dst_mac,
                src_mac,
            } => VipEntry::forward(vrid, ifindex, dst_mac, src_mac),
        }
    }

    pub fn from_entry(entry: &VipEntry) -> Option<Self> {
        let vrid = entry.vrid;
        Some(match VipAction::from_u8(entry.action)? {
            VipAction::Local => Ownership::Local { vrid },
            VipAction::Drop => Ownership::Drop { vrid },
            VipAction::Forward => Ownership::Forward {
                vrid,
                ifindex: entry.ifindex,
                dst_mac: entry.dst_mac,
                src_mac: entry.src_mac,
            },
        })
    }
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ownership::Local { vrid } => write!(f, "local (vrid {vrid})"),
            Ownership::Drop { vrid } => write!(f, "drop (vrid {vrid})"),
            Ownership::Forward {
                vrid,
                ifindex,
                dst_mac,
                src_mac,
            } => write!(
                f,
                "forward (vrid {vrid}) to {} from {} via ifindex {ifindex}",
                Mac(*dst_mac),
                Mac(*src_mac)
            ),
        }
    }
}

/// A MAC address, printed `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ":" };
            write!(f, "{sep}{byte:02x}")?;
        }
        Ok(())
    }
}

/// The `VIPS` key of an address.
pub(super) fn peer_key(vrid: u8, addr: IpAddr) -> PeerKey {
    let VipKey { family, addr, .. } = VipKey::from_ip(addr);
    PeerKey {
        family,
        vrid,
        _pad: [0; 2],
        addr,
    }
}

pub(super) fn key_addr(family: u8, addr: [u8; 16]) -> Option<IpAddr> {
    match family {
        FAMILY_IPV4 => Some(IpAddr::V4(Ipv4Addr::new(
            addr[0], addr[1], addr[2], addr[3],
        ))),
        FAMILY_IPV6 => Some(IpAddr::V6(Ipv6Addr::from(addr))),
        _ => None,
    }
}

pub(super) fn stats_from_array(counters: &[u64; STATS_COUNTERS as usize]) -> Stats {
    // SAFETY: `Stats` is `repr(C)` of exactly `STATS_COUNTERS` u64s (asserted in
    // vipflip-common), so every `[u64; STATS_COUNTERS]` is a valid `Stats`.
    unsafe { std::mem::transmute::<[u64; STATS_COUNTERS as usize], Stats>(*counters) }
}

pub(super) fn open(iface: &str, dir: &Path, map: MapName) -> Result<MapData, DataplaneError> {
    MapData::from_pin(dir.join(map.as_str())).map_err(|source| DataplaneError::Map {
        iface: iface.to_owned(),
        map,
        op: "open pin",
        source,
    })
}

/// Wraps pinned map data in its typed aya map, checking the kernel map type and sizes.
pub(super) fn typed<T>(iface: &str, name: MapName, data: MapData) -> Result<T, DataplaneError>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let map = match name {
        MapName::Vips | MapName::Vrids | MapName::Peers | MapName::Services => Map::HashMap(data),
        MapName::Stats | MapName::VridStats | MapName::LbCursors | MapName::FlowBudget => {
            Map::PerCpuArray(data)
        }
        MapName::VipFilter | MapName::LbTables | MapName::Reals | MapName::Tunnels => {
            Map::Array(data)
        }
        MapName::Flows => Map::LruHashMap(data),
    };
    T::try_from(map).map_err(|source| DataplaneError::Map {
        iface: iface.to_owned(),
        map: name,
        op: "open as typed map",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_round_trips_through_entry() {
        for ownership in [
            Ownership::Local { vrid: 1 },
            Ownership::Drop { vrid: 255 },
            Ownership::Forward {
                vrid: 51,
                ifindex: 7,
                dst_mac: [2, 0, 0, 0, 0, 1],
                src_mac: [2, 0, 0, 0, 0, 2],
            },
        ] {
            assert_eq!(Ownership::from_entry(&ownership.entry()), Some(ownership));
        }
        let mut bad = VipEntry::local(1);
        bad.action = 0;
        assert_eq!(Ownership::from_entry(&bad), None);
    }

    #[test]
    fn keys_keep_network_order_and_family() {
        let v4: IpAddr = "192.0.2.100".parse().unwrap();
        let key = VipKey::from_ip(v4);
        assert_eq!(
            (key.family, &key.addr[..4], &key.addr[4..]),
            (FAMILY_IPV4, &[192, 0, 2, 100][..], &[0; 12][..])
        );
        assert_eq!(key_addr(key.family, key.addr), Some(v4));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let key = peer_key(9, v6);
        assert_eq!(
            (key.family, key.vrid, key.addr[0], key.addr[15]),
            (FAMILY_IPV6, 9, 0x20, 1)
        );
        assert_eq!(key_addr(key.family, key.addr), Some(v6));
        assert_eq!(key_addr(5, key.addr), None);
    }

    #[test]
    fn mac_prints_colon_separated_hex() {
        assert_eq!(
            Mac([0, 0, 0x5e, 0, 1, 0x33]).to_string(),
            "00:00:5e:00:01:33"
        );
    }
}
