//! The Direct Routing load balancer (the LVS-DR half): virtual services spread over real
//! servers by the XDP program, while the service's VRRP instance is master.
//!
//! - `table`: the lookup tables (Maglev, weighted round robin), pure functions of the
//!   healthy real servers and their weights, so both directors build the same ones.
//! - `check`: health checks (TCP connect, HTTP GET, script) with rise/fall, as tokio tasks
//!   reporting to the daemon loop.

// Moved to agent/lb/src/ ahead of becoming the `vipflip-lb` crate; built here until then.
#[path = "../../lb/src/balancer.rs"]
pub mod balancer;
pub mod check;
#[path = "../../lb/src/table.rs"]
pub mod table;
