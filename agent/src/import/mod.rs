//! `vipflip import-keepalived PATH`: a keepalived.conf (and what it includes) translated into
//! vipflip's TOML configuration, with every option that cannot be carried reported.
//!
//! [`import_keepalived`] reads the file with a hand-written parser of keepalived's syntax
//! ([`parse`]: blocks, `#`/`!` comments, quotes, `include` with globs and cycle detection, a
//! file and line for every word), converts it ([`convert`]) and writes TOML ([`emit`]) whose
//! keys follow `examples/vipflip.toml`. The result passes [`crate::config::Config::parse`].
//!
//! Three outcomes, as the command's exit status says:
//! - lossless (0): everything that matters was carried. Some things are *notes*, written as
//!   comments in the output: keepalived's `state MASTER` (an initial state only; vipflip lets
//!   the priority decide), positive tracking weights rewritten as negative ones on a raised
//!   priority, defaults made explicit (keepalived's default VRRP version is 2).
//! - not carried (2): some option has no vipflip equivalent. Each one is printed to stderr as
//!   `FILE:LINE: warning: OPTION: REASON` and repeated as a comment where it applied.
//! - error (1): the file cannot be read, is not valid keepalived syntax, or lacks what any
//!   VRRP instance needs (a VRID, an interface, a virtual address).
//!
//! # Mapping decisions
//! - `virtual_ipaddress_excluded` is **not** carried as extra VIPs: vipflip advertises every
//!   `virtual_ips` entry, and keepalived discards adverts whose address count differs from
//!   its own, so a mixed group would break. Each excluded address is reported.
//! - keepalived adds a *positive* tracking weight while the object is up; vipflip changes
//!   the priority only while it fails. `priority P` with `weight +w` becomes `priority P + w`
//!   with `weight -w`: the same effective priority in every state (reported when P + Σw
//!   exceeds 254, where keepalived's cap makes them differ).
//! - Sync group members get tracking weight 0 (fault), as keepalived does unless the group
//!   says `sync_group_tracking_weight`.
//! - A `vrrp_script` that uses shell syntax (pipes, `&&`, `$VAR`, redirections, globs)
//!   becomes `["/bin/sh", "-c", "…"]` and is reported; a command whose program is not an
//!   absolute path runs through `/usr/bin/env` (keepalived searched `$PATH` too).
//! - A `vrrp_script` no instance tracks is left out (keepalived does not run it either).
//! - The VRRP version: the instance's `version`, else `global_defs` `vrrp_version`, else
//!   keepalived's default: 2 for IPv4, 3 for IPv6. Always written out.
//! - `virtual_routes` / `virtual_rules` become the instance's `virtual_routes` /
//!   `virtual_rules`, `static_ipaddress` / `static_routes` / `static_rules` become
//!   `[[static_address]]` / `[[static_route]]` / `[[static_rule]]`, one inline table per
//!   line. A route attribute vipflip does not set (`mtu`, `realms`…) is reported and the
//!   route carried; a multipath route (`or`, `nexthop`), a route type other than unicast,
//!   blackhole, unreachable, prohibit, and a rule with a condition vipflip cannot write
//!   (`tos`, `not`, `goto`, ports…: without it the rule would match more) are left out whole.
//!   A rule without `preference` gets the one keepalived gives it (16384, then one less for
//!   each such rule in file order), noted. Table names other than `main`, `local`,
//!   `default` are not carried (vipflip reads no `rt_tables`).
//!
//! # LVS virtual servers
//! - A `virtual_server IP [PORT]` becomes a `[[virtual_server]]` named `IP:PORT/proto` when
//!   its `lvs_method` (`lb_kind`) is `DR` or `TUN` and a converted `vrrp_instance` has its IP
//!   among its `virtual_ipaddress` (that instance becomes its `instance`). `TUN` alone or
//!   `TUN type ipip` → `forward = "ipip"`, `TUN type gue port N` → `forward = "gue"`,
//!   `gue_port = N` (`csum`/`remcsum` noted: vipflip sends GUE variant 1 with a zero UDP
//!   checksum); the outer source is the director's, as IPVS's. `TUN type gre`, NAT (and
//!   keepalived's default, NAT, when the method is absent), SCTP, `fwmark` and `group`
//!   services, and services whose VIP no instance owns are reported and skipped whole; so is
//!   `virtual_server_group`. What keepalived 2.2.7 refuses in the method's syntax is an error.
//! - vipflip's `forward` is per service: a `real_server` whose own `lvs_method` differs from
//!   the service's is reported and left out, and so is a sorry server whose
//!   `sorry_server_lvs_method` differs (keepalived's default, the service's method, is what
//!   vipflip does).
//! - `lb_algo`: `rr` and `wrr` → `wrr` (for `rr` every non-zero weight becomes 1: LVS `rr`
//!   ignores weights), `sh` → `sh`, `mh` → `maglev`; the connection-counting schedulers
//!   (`lc`, `wlc`, …) have no equivalent in a data plane that keeps no counts → `maglev`, with
//!   a note. `persistence_timeout` → `sh` (client affinity without a timeout), with a note.
//! - An absent `protocol` is UDP, as keepalived 2.2.7 does (it warns).
//! - `quorum`: keepalived sums live weights, vipflip counts healthy servers: with equal
//!   weights `w` it becomes `ceil(quorum / w)`, at most the number of servers (noted).
//!   `quorum_up`/`quorum_down`, `notify_up`/`notify_down` are not carried.
//! - Checks: the first `TCP_CHECK`, `HTTP_GET` (first `url`: `path`, one `status_code`,
//!   `regex` → `body`) or `MISC_CHECK` (`misc_path` split as a `vrrp_script`'s `script`) of a
//!   real server. `delay_loop` (inherited from the service, default 60 s) → `interval`;
//!   `connect_timeout` (default 5 s) or `misc_timeout` → `timeout`, at most the interval;
//!   `retry` (default 1, 0 for `MISC_CHECK`) → `fall = retry + 1`; `connect_port` → `port`.
//!   Other checkers (`SSL_GET`, `DNS_CHECK`, …) are reported; the server is carried without one.
//! - Real server and sorry server ports: Direct Routing and tunnels keep the packet's port,
//!   so LVS ignores them, and so does the import (noted when they differ from the service's).

mod convert;
mod emit;
mod glob;
mod parse;
#[cfg(test)]
mod tests;

use core::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A converted configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The vipflip configuration, TOML.
    pub toml: String,
    /// What could not be carried, and notes, in file order.
    pub reports: Vec<Report>,
}

impl Import {
    /// Whether every option was carried (notes do not count).
    pub fn lossless(&self) -> bool {
        !self.reports.iter().any(Report::is_loss)
    }

    /// The reports of options that were not carried.
    pub fn not_carried(&self) -> impl Iterator<Item = &Report> {
        self.reports.iter().filter(|r| r.is_loss())
    }
}

/// Whether a [`Report`] is a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// The option (or part of it) is not in the output.
    NotCarried,
    /// Carried, but differently written; said in a comment in the output.
    Note,
}

/// One keepalived option that could not be carried, or a note about how one was.
///
/// Displays as `FILE:LINE: warning: OPTION: REASON` (or `note:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Report {
    pub kind: ReportKind,
    /// The file, as reached from the path given (includes joined to their directory).
    pub file: PathBuf,
    pub line: usize,
    /// The option as written: `use_vmac`, `dev eth1`, `virtual_server 192.0.2.1 80`.
    pub option: String,
    /// Why, and what to do instead.
    pub reason: String,
}

impl Report {
    pub fn is_loss(&self) -> bool {
        self.kind == ReportKind::NotCarried
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ReportKind::NotCarried => "warning",
            ReportKind::Note => "note",
        };
        write!(
            f,
            "{}:{}: {kind}: {}: {}",
            self.file.display(),
            self.line,
            self.option,
            self.reason
        )
    }
}

/// Why a keepalived configuration could not be converted at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file given could not be read.
    #[error("{}: error: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not keepalived syntax (braces, quotes), or an include that cannot be followed.
    #[error("{at}: error: {message}")]
    Syntax {
        /// `FILE:LINE`.
        at: String,
        message: String,
    },
    /// Well-formed, but a value is invalid or something every instance needs is missing.
    #[error("{at}: error: {message}")]
    Invalid {
        /// `FILE:LINE`.
        at: String,
        message: String,
    },
}

/// Reads the keepalived configuration at `path` (following includes) and converts it.
/// `Err` carries every problem found (a syntax error stops at the first).
pub fn import_keepalived(path: &Path) -> Result<Import, Vec<ImportError>> {
    let source = parse::parse(path).map_err(|e| vec![e])?;
    let output = convert::convert(&source)?;
    let toml = emit::emit(&output, path);
    let mut reports = output.reports;
    reports.sort_by_key(|r| r.loc);
    Ok(Import {
        toml,
        reports: reports.into_iter().map(|r| r.report).collect(),
    })
}

/// `vipflip import-keepalived PATH`: the TOML to stdout, every option not carried to stderr
/// (`FILE:LINE: warning: OPTION: REASON`). Exit status 0 when lossless, 2 when something
/// could not be carried, 1 when the file cannot be read or parsed (nothing on stdout).
pub fn import_keepalived_command(path: &Path) -> ExitCode {
    match import_keepalived(path) {
        Ok(import) => {
            print!("{}", import.toml);
            let lost: Vec<&Report> = import.not_carried().collect();
            for report in &lost {
                eprintln!("{report}");
            }
            if lost.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{}: {} option{} could not be carried (each is also a comment in the output)",
                    path.display(),
                    lost.len(),
                    if lost.len() == 1 { "" } else { "s" }
                );
                ExitCode::from(2)
            }
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}
