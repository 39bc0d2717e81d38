//! The real server's side of a tunnel: the `decap` XDP program, for hosts whose kernel has
//! no `ipip` or `fou` (katran ships one for the same reason). `vipflip load-decap` attaches
//! it with the GUE ports it takes; its link, ports and counters are pinned under
//! `<pin_root>/<iface>/` (`decap_link`, `DECAP_PORTS`, `DECAP_STATS`), so it outlives the
//! command and `vipflip unload` removes it.

use std::{fs, path::Path};

use aya::{
    Ebpf,
    maps::{HashMap, PerCpuArray},
    programs::XdpMode,
};
use vipflip_common::{DecapStats, MAX_DECAP_PORTS};

use super::{
    DataplaneError, EBPF_OBJECT,
    attach::{ifindex, named_program, on_bpffs, pin_error, pin_link},
};

/// The program's name in the object (`#[xdp] fn decap`).
pub const DECAP_PROGRAM_NAME: &str = "decap";
const DECAP_PORTS: &str = "DECAP_PORTS";
const DECAP_STATS: &str = "DECAP_STATS";
const DECAP_LINK: &str = "decap_link";

/// Attaches the `decap` program to `iface`, taking GUE on `gue_ports` (IPIP always). Run
/// again, it replaces what an earlier run attached (with the new ports): the old link goes
/// when its pin does.
pub fn attach_decap(iface: &str, pin_root: &Path, gue_ports: &[u16]) -> Result<(), DataplaneError> {
    if EBPF_OBJECT.is_empty() {
        return Err(DataplaneError::NoObject);
    }
    if gue_ports.len() > MAX_DECAP_PORTS as usize {
        return Err(invalid(
            iface,
            format!(
                "{} GUE ports; the program takes at most {MAX_DECAP_PORTS}",
                gue_ports.len()
            ),
        ));
    }
    let ifindex = ifindex(iface)?;
    let dir = pin_root.join(iface);
    on_bpffs(iface, &dir)?;
    let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(|source| DataplaneError::Load {
        iface: iface.to_owned(),
        source: Box::new(source),
    })?;
    let mut ports: HashMap<_, [u8; 2], u8> = HashMap::try_from(map(&mut ebpf, iface, DECAP_PORTS)?)
        .map_err(|e| invalid(iface, format!("{DECAP_PORTS}: {e}")))?;
    for port in gue_ports {
        ports
            .insert(port.to_be_bytes(), 1, 0)
            .map_err(|e| invalid(iface, format!("{DECAP_PORTS}: adding port {port}: {e}")))?;
    }
    for name in [DECAP_LINK, DECAP_STATS, DECAP_PORTS] {
        let path = dir.join(name);
        if path.exists() {
            fs::remove_file(&path).map_err(|source| pin_error(iface, &path, source))?;
        }
    }
    map(&mut ebpf, iface, DECAP_PORTS)?
        .pin(dir.join(DECAP_PORTS))
        .map_err(|e| invalid(iface, format!("pinning {DECAP_PORTS}: {e}")))?;
    let stats_path = dir.join(DECAP_STATS);
    map(&mut ebpf, iface, DECAP_STATS)?
        .pin(&stats_path)
        .map_err(|e| invalid(iface, format!("pinning {DECAP_STATS}: {e}")))?;
    let program = named_program(&mut ebpf, iface, DECAP_PROGRAM_NAME)?;
    program.load().map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "load",
        source,
    })?;
    let link_id = program
        .attach_to_if_index(ifindex, XdpMode::Driver)
        .or_else(|_| program.attach_to_if_index(ifindex, XdpMode::Skb))
        .map_err(|source| DataplaneError::Attach {
            iface: iface.to_owned(),
            tried: "driver and skb mode",
            source,
        })?;
    pin_link(program, link_id, iface, &dir.join(DECAP_LINK))
}

/// The GUE ports of the `decap` program attached to `iface`, sorted; `None` when none is
/// attached there.
pub fn decap_ports(iface: &str, pin_root: &Path) -> Result<Option<Vec<u16>>, DataplaneError> {
    let dir = pin_root.join(iface);
    if !dir.join(DECAP_LINK).exists() {
        return Ok(None);
    }
    let path = dir.join(DECAP_PORTS);
    let data = aya::maps::MapData::from_pin(&path)
        .map_err(|e| invalid(iface, format!("{}: {e}", path.display())))?;
    let ports: HashMap<_, [u8; 2], u8> = HashMap::try_from(aya::maps::Map::HashMap(data))
        .map_err(|e| invalid(iface, format!("{DECAP_PORTS}: {e}")))?;
    let mut list: Vec<u16> = ports
        .keys()
        .map(|key| key.map(u16::from_be_bytes))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(iface, format!("{DECAP_PORTS}: {e}")))?;
    list.sort_unstable();
    Ok(Some(list))
}

/// What the `decap` program attached to `iface` counted, summed over the CPUs.
pub fn decap_stats(iface: &str, pin_root: &Path) -> Result<DecapStats, DataplaneError> {
    let path = pin_root.join(iface).join(DECAP_STATS);
    let data = aya::maps::MapData::from_pin(&path).map_err(|e| {
        invalid(
            iface,
            format!("{}: {e} (is the decap program loaded?)", path.display()),
        )
    })?;
    let stats: PerCpuArray<_, DecapStats> =
        PerCpuArray::try_from(aya::maps::Map::PerCpuArray(data))
            .map_err(|e| invalid(iface, format!("{DECAP_STATS}: {e}")))?;
    let per_cpu = stats
        .get(&0, 0)
        .map_err(|e| invalid(iface, format!("{DECAP_STATS}: {e}")))?;
    Ok(per_cpu
        .iter()
        .fold(DecapStats::default(), |sum, cpu| DecapStats {
            ipip: sum.ipip + cpu.ipip,
            gue: sum.gue + cpu.gue,
            passed: sum.passed + cpu.passed,
        }))
}

fn map<'a>(
    ebpf: &'a mut Ebpf,
    iface: &str,
    name: &str,
) -> Result<&'a mut aya::maps::Map, DataplaneError> {
    ebpf.map_mut(name)
        .ok_or_else(|| invalid(iface, format!("the embedded object has no map {name}")))
}

fn invalid(iface: &str, message: String) -> DataplaneError {
    DataplaneError::Invalid {
        iface: iface.to_owned(),
        message,
    }
}
