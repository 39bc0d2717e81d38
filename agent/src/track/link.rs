//! The link driver: interface up/down from rtnetlink `RTNLGRP_LINK` events, no polling.
//!
//! The socket joins the multicast group *before* the initial dump, so no change can fall
//! between the two: an event queued during the dump is applied after it, and events carry the
//! whole link state, so replaying one that predates the dump ends in the same state.

use std::collections::{BTreeSet, HashMap};

use futures_util::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Observation, TrackError};

/// Subscribes to link events in the current network namespace and starts the task that
/// reports `names` on `tx`: each one's state once at start (absent = down), then changes.
pub(super) fn spawn(
    names: BTreeSet<String>,
    tx: mpsc::Sender<Observation>,
) -> Result<JoinHandle<()>, TrackError> {
    let (connection, handle, mut events) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
            .map_err(TrackError::LinkSubscribe)?;
    Ok(tokio::spawn(async move {
        let driver = tokio::spawn(connection);
        let mut links = Links::new(names);
        let reports = match dump(&handle, &mut links).await {
            Ok(reports) => reports,
            Err(e) => {
                log::error!("link tracking: RTM_GETLINK dump: {e}; links are not tracked");
                driver.abort();
                return;
            }
        };
        if !send_all(&tx, reports).await {
            driver.abort();
            return;
        }
        while let Some((message, _)) = events.next().await {
            let reports = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    links.update(&link, true)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    links.update(&link, false)
                }
                NetlinkPayload::Overrun(_) => {
                    // The kernel dropped events (ENOBUFS): re-read everything.
                    log::warn!("link tracking: netlink overrun, re-reading all links");
                    match dump(&handle, &mut links).await {
                        Ok(reports) => reports,
                        Err(e) => {
                            log::error!("link tracking: RTM_GETLINK dump: {e}");
                            Vec::new()
                        }
                    }
                }
                _ => Vec::new(),
            };
            if !send_all(&tx, reports).await {
                break;
            }
        }
        driver.abort();
    }))
}

/// Dumps every link and reports the watched names, present or not.
async fn dump(handle: &Handle, links: &mut Links) -> Result<Vec<Observation>, rtnetlink::Error> {
    let mut present = BTreeSet::new();
    let mut reports = Vec::new();
    let mut stream = handle.link().get().execute();
    while let Some(link) = stream.try_next().await? {
        if let Some(name) = name_of(&link) {
            present.insert(name.to_owned());
        }
        reports.extend(links.update(&link, true));
    }
    let absent: Vec<String> = links
        .watched
        .iter()
        .filter(|n| !present.contains(*n))
        .cloned()
        .collect();
    for name in absent {
        reports.extend(links.set(&name, false));
    }
    Ok(reports)
}

async fn send_all(tx: &mpsc::Sender<Observation>, reports: Vec<Observation>) -> bool {
    for report in reports {
        if tx.send(report).await.is_err() {
            return false;
        }
    }
    true
}

/// What the driver knows: which names it watches, what it last reported for each, and
/// which index carries which name (to see a watched name renamed away).
#[derive(Debug)]
struct Links {
    watched: BTreeSet<String>,
    reported: HashMap<String, bool>,
    names: HashMap<u32, String>,
}

impl Links {
    fn new(watched: BTreeSet<String>) -> Self {
        Self {
            watched,
            reported: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Applies an `RTM_NEWLINK` (`present`) or `RTM_DELLINK` message.
    fn update(&mut self, link: &LinkMessage, present: bool) -> Vec<Observation> {
        let index = link.header.index;
        let mut reports = Vec::new();
        let name = name_of(link).map(str::to_owned);
        let previous = if present {
            match &name {
                Some(name) => self.names.insert(index, name.clone()),
                None => self.names.get(&index).cloned(),
            }
        } else {
            self.names.remove(&index)
        };
        // Renamed away: the old name is gone.
        if let Some(old) = previous.filter(|old| Some(old) != name.as_ref()) {
            reports.extend(self.set(&old, false));
        }
        let Some(name) = name.or_else(|| self.names.get(&index).cloned()) else {
            return reports;
        };
        let flags = link.header.flags;
        let up = present && flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp);
        reports.extend(self.set(&name, up));
        reports
    }

    /// Reports `name` as `up` if it is watched and that is news.
    fn set(&mut self, name: &str, up: bool) -> Option<Observation> {
        if !self.watched.contains(name) || self.reported.get(name) == Some(&up) {
            return None;
        }
        log::info!("interface {name} {}", if up { "up" } else { "down" });
        self.reported.insert(name.to_owned(), up);
        Some(Observation::Link {
            name: name.to_owned(),
            up,
        })
    }
}

fn name_of(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

    use super::Links;
    use crate::track::Observation;

    fn link(index: u32, name: &str, up: bool, carrier: bool) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if up {
            msg.header.flags |= LinkFlags::Up;
        }
        if carrier {
            msg.header.flags |= LinkFlags::LowerUp;
        }
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg
    }

    fn obs(name: &str, up: bool) -> Observation {
        Observation::Link {
            name: name.into(),
            up,
        }
    }

    fn watching(names: &[&str]) -> Links {
        Links::new(
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<_>>(),
        )
    }

    #[test]
    fn up_needs_admin_up_and_carrier() {
        let mut links = watching(&["eth1"]);
        assert_eq!(
            links.update(&link(3, "eth1", true, true), true),
            [obs("eth1", true)]
        );
        assert_eq!(
            links.update(&link(3, "eth1", true, false), true),
            [obs("eth1", false)]
        );
        assert_eq!(
            links.update(&link(3, "eth1", true, true), true),
            [obs("eth1", true)]
        );
        assert_eq!(
            links.update(&link(3, "eth1", false, true), true),
            [obs("eth1", false)]
        );
    }

    #[test]
    fn only_changes_of_watched_names_are_reported() {
        let mut links = watching(&["eth1"]);
        assert_eq!(links.update(&link(4, "eth2", false, false), true), []);
        assert_eq!(
            links.update(&link(3, "eth1", true, true), true),
            [obs("eth1", true)]
        );
        assert_eq!(links.update(&link(3, "eth1", true, true), true), []);
    }

    #[test]
    fn deleted_and_renamed_links_are_down() {
        let mut links = watching(&["eth1", "wan"]);
        links.update(&link(3, "eth1", true, true), true);
        assert_eq!(
            links.update(&link(3, "eth1", true, true), false),
            [obs("eth1", false)]
        );
        links.update(&link(5, "eth1", true, true), true);
        // Index 5 renamed eth1 -> wan: eth1 is gone, wan appears.
        assert_eq!(
            links.update(&link(5, "wan", true, true), true),
            [obs("eth1", false), obs("wan", true)]
        );
    }
}
