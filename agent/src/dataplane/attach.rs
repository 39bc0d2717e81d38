//! Loading the embedded program, attaching it (native, then generic XDP) and pinning its maps
//! and link; the `pass` program for veth peers; the program's log records.

use std::{
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::MapInfo,
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
    },
};
use aya_obj::programs::XdpAttachType;

use super::{
    AttachedMode, DataplaneError, EBPF_OBJECT, MapName, PASS_PROGRAM_NAME, PROGRAM_NAME,
    XdpModeChoice,
};

/// Makes sure `dir` exists on a bpffs, mounting one where there is none (see `vipflip_bpffs`).
pub(super) fn on_bpffs(iface: &str, dir: &Path) -> Result<(), DataplaneError> {
    match vipflip_bpffs::ensure(dir) {
        Ok(vipflip_bpffs::Prepared::AlreadyOnBpffs) => Ok(()),
        Ok(vipflip_bpffs::Prepared::Mounted { at }) => {
            log::info!("mounted a bpffs on {} for the pins", at.display());
            Ok(())
        }
        Err(source) => Err(DataplaneError::Bpffs {
            iface: iface.to_owned(),
            source,
        }),
    }
}

/// Loads the embedded program (not attached). With `pin_dir`, every map is pinned there, or
/// re-used from there when a pin already exists.
///
/// Used by [`Dataplane::attach`], and by the kernel tests and benchmarks that run the program
/// through `BPF_PROG_TEST_RUN` without any interface.
pub fn load(iface: &str, pin_dir: Option<&Path>) -> Result<Ebpf, DataplaneError> {
    if EBPF_OBJECT.is_empty() {
        return Err(DataplaneError::NoObject);
    }
    let mut loader = EbpfLoader::new();
    let paths: Vec<(MapName, PathBuf)> = pin_dir
        .map(|dir| {
            MapName::ALL
                .iter()
                .map(|m| (*m, dir.join(m.as_str())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(dir) = pin_dir {
        on_bpffs(iface, dir)?;
        check_pins(iface, dir)?;
    }
    for (map, path) in &paths {
        loader.map_pin_path(map.as_str(), path.as_path());
    }
    let mut ebpf = loader
        .load(EBPF_OBJECT)
        .map_err(|source| DataplaneError::Load {
            iface: iface.to_owned(),
            source: Box::new(source),
        })?;
    let program = program_mut(&mut ebpf, iface)?;
    program.load().map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "load",
        source,
    })?;
    Ok(ebpf)
}

/// Pins another build left (a map whose key, value or size changed since) cannot be reused:
/// the loader would hand them to the program and the verifier would refuse it with a dump.
/// Says which map differs, and how to start afresh.
pub(super) fn check_pins(iface: &str, dir: &Path) -> Result<(), DataplaneError> {
    let object = aya_obj::Object::parse(EBPF_OBJECT).map_err(|e| DataplaneError::Invalid {
        iface: iface.to_owned(),
        message: format!("the embedded XDP object does not parse: {e}"),
    })?;
    for map in MapName::ALL {
        let path = dir.join(map.as_str());
        if !path.exists() {
            continue;
        }
        let Some(def) = object.maps.get(map.as_str()) else {
            continue;
        };
        let info = MapInfo::from_pin(&path).map_err(|source| DataplaneError::Map {
            iface: iface.to_owned(),
            map,
            op: "reading the pinned map's definition",
            source,
        })?;
        let wanted = (def.key_size(), def.value_size(), def.max_entries());
        let found = (info.key_size(), info.value_size(), info.max_entries());
        let same_type = info.map_type().is_ok_and(|t| t as u32 == def.map_type());
        // A definition without a size leaves it to the loader.
        if !same_type
            || (wanted.0, wanted.1) != (found.0, found.1)
            || (wanted.2 != 0 && wanted.2 != found.2)
        {
            return Err(DataplaneError::IncompatiblePin {
                iface: iface.to_owned(),
                map,
                path,
                root: dir.parent().unwrap_or(dir).to_owned(),
                found,
                wanted,
            });
        }
    }
    Ok(())
}

/// The XDP program inside a loaded object.
pub fn program_mut<'a>(ebpf: &'a mut Ebpf, iface: &str) -> Result<&'a mut Xdp, DataplaneError> {
    named_program(ebpf, iface, PROGRAM_NAME)
}

/// The XDP program `name` inside a loaded object.
pub(super) fn named_program<'a>(
    ebpf: &'a mut Ebpf,
    iface: &str,
    name: &str,
) -> Result<&'a mut Xdp, DataplaneError> {
    ebpf.program_mut(name)
        .ok_or_else(|| DataplaneError::Invalid {
            iface: iface.to_owned(),
            message: format!("the object has no program named {name}"),
        })?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            iface: iface.to_owned(),
            what: "type",
            source,
        })
}

/// Reads the log records of the program attached to `iface` (aya-log; only rare events, never
/// per packet: see ARCHITECTURE.md) into the `log` crate. Call `flush` when its fd is readable.
pub fn program_logger(
    iface: &str,
    pin_root: &Path,
) -> Result<aya_log::EbpfLogger<&'static dyn log::Log>, DataplaneError> {
    let program = pinned_program(iface, pin_root)?;
    let info = program.info().map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "info",
        source,
    })?;
    aya_log::EbpfLogger::init_from_id(info.id()).map_err(|source| DataplaneError::Invalid {
        iface: iface.to_owned(),
        message: format!("opening the program's log buffer: {source}"),
    })
}

/// Opens the pinned program of `iface` (for `BPF_PROG_TEST_RUN` against what is attached).
pub fn pinned_program(iface: &str, pin_root: &Path) -> Result<Xdp, DataplaneError> {
    let path = pin_root.join(iface).join("prog");
    Xdp::from_pin(&path, XdpAttachType::Interface).map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "open pinned",
        source,
    })
}

/// Attaches the pass-everything program `pass` to `iface` and pins its link as
/// `<pin_root>/<iface>/pass_link` ([`Dataplane::detach`] removes it).
///
/// On veth, frames sent with `XDP_TX` or redirected by XDP are only delivered when the
/// receiving end runs an XDP program in driver mode (that turns on the veth's NAPI receive
/// path); this one is enough. Driver mode is tried first for that reason.
pub fn attach_pass(iface: &str, pin_root: &Path) -> Result<(), DataplaneError> {
    if EBPF_OBJECT.is_empty() {
        return Err(DataplaneError::NoObject);
    }
    let ifindex = ifindex(iface)?;
    let dir = pin_root.join(iface);
    let link_path = dir.join("pass_link");
    if link_path.exists() {
        return Ok(());
    }
    on_bpffs(iface, &dir)?;
    let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(|source| DataplaneError::Load {
        iface: iface.to_owned(),
        source: Box::new(source),
    })?;
    let program = named_program(&mut ebpf, iface, PASS_PROGRAM_NAME)?;
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
    pin_link(program, link_id, iface, &link_path)
}

pub(super) fn attach_program(
    ebpf: &mut Ebpf,
    iface: &str,
    ifindex: u32,
    dir: &Path,
    mode: XdpModeChoice,
) -> Result<AttachedMode, DataplaneError> {
    let program = program_mut(ebpf, iface)?;
    let tries: &[(XdpMode, AttachedMode)] = match mode {
        XdpModeChoice::Auto => &[
            (XdpMode::Driver, AttachedMode::Driver),
            (XdpMode::Skb, AttachedMode::Skb),
        ],
        XdpModeChoice::Driver => &[(XdpMode::Driver, AttachedMode::Driver)],
        XdpModeChoice::Skb => &[(XdpMode::Skb, AttachedMode::Skb)],
    };
    let mut last_error = None;
    let mut success = None;
    for (xdp_mode, label) in tries {
        match program.attach_to_if_index(ifindex, *xdp_mode) {
            Ok(link_id) => {
                success = Some((link_id, *label));
                break;
            }
            Err(err) => {
                log::info!("{iface}: XDP {label} attach failed: {err}");
                last_error = Some(err);
            }
        }
    }
    let Some((link_id, attached_mode)) = success else {
        let modes = match mode {
            XdpModeChoice::Auto => "driver and skb mode",
            XdpModeChoice::Driver => "driver mode",
            XdpModeChoice::Skb => "skb mode",
        };
        return Err(DataplaneError::Attach {
            iface: iface.to_owned(),
            tried: modes,
            source: last_error.unwrap_or(ProgramError::NotLoaded),
        });
    };
    let prog_path = dir.join("prog");
    if !prog_path.exists() {
        program
            .pin(&prog_path)
            .map_err(|source| pin_error(iface, &prog_path, io::Error::other(source)))?;
    }
    pin_link(program, link_id, iface, &dir.join("link"))?;
    log::info!(
        "{iface}: XDP attached in {attached_mode} mode, pinned under {}",
        dir.display()
    );
    Ok(attached_mode)
}

/// Pins the link of an attached program, so it stays attached after this process.
pub(super) fn pin_link(
    program: &mut Xdp,
    link_id: aya::programs::xdp::XdpLinkId,
    iface: &str,
    path: &Path,
) -> Result<(), DataplaneError> {
    let link = program
        .take_link(link_id)
        .map_err(|source| DataplaneError::Program {
            iface: iface.to_owned(),
            what: "take link",
            source,
        })?;
    let fd_link = FdLink::try_from(link).map_err(|source| DataplaneError::Invalid {
        iface: iface.to_owned(),
        message: format!(
            "the kernel attached XDP through netlink, which cannot be pinned ({source}); \
             vipflip needs bpf_link (Linux >= 5.9)"
        ),
    })?;
    let _pinned: PinnedLink = fd_link
        .pin(path)
        .map_err(|source| pin_error(iface, path, io::Error::other(source)))?;
    Ok(())
}

pub(super) fn ifindex(iface: &str) -> Result<u32, DataplaneError> {
    let no_such = || DataplaneError::NoSuchInterface {
        iface: iface.to_owned(),
    };
    let name = CString::new(iface).map_err(|_| no_such())?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(no_such())
    } else {
        Ok(index)
    }
}

pub(super) fn pin_error(iface: &str, path: &Path, source: io::Error) -> DataplaneError {
    DataplaneError::Pin {
        iface: iface.to_owned(),
        path: path.to_owned(),
        source,
    }
}
