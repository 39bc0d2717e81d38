//! Builds the XDP program (`ebpf/`, for `bpfel-unknown-none` with nightly) through aya-build
//! and leaves the object in `OUT_DIR/vipflip-xdp`, which `dataplane` embeds.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (for work on the pure-Rust layers on a machine
//! without bpf-linker): an empty object is embedded instead, and loading it fails with an
//! error that says so.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        // aya-build returns early too; we only make sure there is something to embed.
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        fs::write(out_dir.join("vipflip-xdp"), b"").context("writing placeholder eBPF object")?;
        return Ok(());
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "vipflip-ebpf")
        .ok_or_else(|| anyhow!("package vipflip-ebpf not found in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("vipflip-ebpf manifest has no parent directory"))?;
    // aya-build watches the eBPF crate's own directory only; the map types it shares with us
    // live in vipflip-common, and an object built from stale types would disagree with the
    // agent about every map's layout.
    let common = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "vipflip-common")
        .and_then(|p| p.manifest_path.parent())
        .ok_or_else(|| anyhow!("package vipflip-common not found in the workspace"))?;
    println!("cargo:rerun-if-changed={common}");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
