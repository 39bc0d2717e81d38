//! `track`'s link driver in a namespace: rtnetlink events of a veth arrive as observations,
//! and a `TrackState` turns them into the state machine's commands. Needs root.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use vipflip::config::Config;
use vipflip::track::{Observation, TrackState, spawn_trackers};
use vipflip::vrrp::{Command, FaultCause};
use vipflip::wire::Priority;
use vipflip_integration_tests::{Netns, unique, veth};

/// Instance `VI_1` on `iface`, tracking `tracked` with weight -30.
fn config(iface: &str, tracked: &str) -> Config {
    let text = format!(
        r#"
        [[instance]]
        name = "VI_1"
        interface = "{iface}"
        vrid = 51
        priority = 100
        virtual_ips = ["192.0.2.100/24"]
        track_interfaces = [{{ name = "{tracked}", weight = -30 }}]
        "#
    );
    // The interfaces live in the test namespace, not here: "no such interface" is a warning.
    Config::parse(&text, "track_link.toml")
        .unwrap_or_else(|e| panic!("config: {e:?}"))
        .0
}

/// The trackers of `config`, run inside `ns`; observations come back on the returned
/// channel until the returned sender is dropped.
fn run_trackers(
    ns: &Netns,
    config: Config,
) -> (
    std_mpsc::Receiver<Observation>,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (obs_tx, obs_rx) = std_mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = ns.spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            let (mut observations, trackers) = spawn_trackers(&config).expect("spawn_trackers");
            assert_eq!(trackers.len(), 1, "one link driver, nothing else");
            loop {
                tokio::select! {
                    observation = observations.recv() => {
                        let observation = observation.expect("the link driver stopped");
                        if obs_tx.send(observation).is_err() {
                            break;
                        }
                    }
                    _ = &mut stop_rx => break,
                }
            }
        });
    });
    (obs_rx, stop_tx, thread)
}

fn next(rx: &std_mpsc::Receiver<Observation>, waiting_for: &str) -> Observation {
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no observation ({waiting_for}) within 10 s: {e}"))
}

fn link(name: &str, up: bool) -> Observation {
    Observation::Link {
        name: name.to_owned(),
        up,
    }
}

#[test]
#[ignore = "needs root"]
fn veth_up_and_down_events_arrive_as_observations() {
    let a = Netns::new("vftl-a");
    let b = Netns::new("vftl-b");
    let (a_if, b_if, absent) = (unique("vta"), unique("vtb"), unique("vtx"));
    veth(&a, &a_if, &b, &b_if);
    // Track the instance's own interface and one that does not exist (yet).
    let config = config(&a_if, &absent);
    let mut track = TrackState::new(config.instances[0].track_config());
    let (rx, stop, thread) = run_trackers(&a, config);

    // The initial dump: present links first, then the absent one, down.
    let initial = [next(&rx, "initial state"), next(&rx, "initial state")];
    assert_eq!(initial, [link(&a_if, true), link(&absent, false)]);
    let commands: Vec<Command> = initial.iter().flat_map(|o| track.observe(o)).collect();
    assert_eq!(
        commands,
        [
            Command::Unfault(FaultCause::LinkDown),
            Command::SetPriority(Priority(70))
        ]
    );
    assert_eq!(
        track.priority(),
        Priority(70),
        "absent tracked link: 100 - 30"
    );
    assert!(track.faults().is_empty());

    // The peer goes down: our side loses carrier.
    b.ip(&["link", "set", &b_if, "down"]);
    let down = next(&rx, "carrier loss");
    assert_eq!(down, link(&a_if, false));
    assert_eq!(track.observe(&down), [Command::Fault(FaultCause::LinkDown)]);

    b.ip(&["link", "set", &b_if, "up"]);
    let up = next(&rx, "carrier back");
    assert_eq!(up, link(&a_if, true));
    assert_eq!(track.observe(&up), [Command::Unfault(FaultCause::LinkDown)]);

    // Administratively down, then up again.
    a.ip(&["link", "set", &a_if, "down"]);
    assert_eq!(next(&rx, "admin down"), link(&a_if, false));
    a.ip(&["link", "set", &a_if, "up"]);
    assert_eq!(next(&rx, "admin up"), link(&a_if, true));

    // The tracked interface appears (one end of a second veth pair, both ends up): the
    // priority comes back.
    let peer = unique("vty");
    a.ip(&[
        "link", "add", &absent, "type", "veth", "peer", "name", &peer,
    ]);
    a.ip(&["link", "set", &peer, "up"]);
    a.ip(&["link", "set", &absent, "up"]);
    let appeared = next(&rx, "tracked link up");
    assert_eq!(appeared, link(&absent, true));
    assert_eq!(
        track.observe(&appeared),
        [Command::SetPriority(Priority(100))]
    );

    // Deleted: down again.
    a.ip(&["link", "del", &absent]);
    let gone = next(&rx, "tracked link deleted");
    assert_eq!(gone, link(&absent, false));
    assert_eq!(track.observe(&gone), [Command::SetPriority(Priority(70))]);

    drop(stop);
    thread.join().expect("tracker thread");
}
