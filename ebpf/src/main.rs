//! The vipflip XDP program.
//!
//! One pass over each frame decides one [`Outcome`]: VRRP adverts are validated before the
//! kernel stack sees them, traffic to a virtual IP is delivered, forwarded on-wire to the
//! current owner, or dropped, as the agent wrote in `VIPS`; everything else passes untouched.
//! The outcome and its verdict are counted at the single exit point, [`vipflip`].
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(
    target_arch = "bpf",
    expect(
        clippy::inline_always,
        reason = "BPF: helpers must inline into the program, so the verifier sees one function \
                  and bounds checks stay next to the reads they guard"
    )
)]

#[cfg(target_arch = "bpf")]
mod decap;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod program;
#[cfg(target_arch = "bpf")]
mod tunnel;

// The crate is built for real only for `bpfel-unknown-none` (by aya-build from agent/build.rs).
// On the host it must still type-check, so `cargo clippy --workspace` covers the eBPF crate too.
#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects code that could panic.
    loop {}
}

/// The kernel only lets GPL-compatible programs call some helpers (`bpf_redirect` is fine either
/// way, but aya-log's ring buffer output is GPL-only).
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
