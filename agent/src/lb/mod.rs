//! The Direct Routing load balancer (the LVS-DR half): virtual services spread over real
//! servers by the XDP program, while the service's VRRP instance is master.
//!
//! - `table`: the lookup tables (Maglev, weighted round robin), pure functions of the
//!   healthy real servers and their weights, so both directors build the same ones.
//! - `check`: health checks (TCP connect, HTTP GET, script) with rise/fall, as tokio tasks
//!   reporting to the daemon loop.

pub mod balancer;
pub mod check;
pub mod table;
