//! Routes, policy rules and addresses the configuration asks for (an instance's
//! `virtual_routes` and `virtual_rules`, the `static_*` tables), written as `ip route`, `ip
//! rule` and `ip address` would write them.
//!
//! Adding is idempotent: a route is written with `NLM_F_REPLACE`, a rule or an address that
//! is already there is left as it is (`EEXIST`). Removing something already gone is not an
//! error either. A route is removed by its destination, table, metric and protocol, so a
//! route to the same prefix that someone else added (another protocol) is never taken.

use std::net::IpAddr;

use rtnetlink::{
    RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        route::{RouteMessage, RouteProtocol, RouteScope, RouteType},
        rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage},
    },
};

use super::{IfAddr, Netlink, NetlinkError, errno, request};
use crate::config::{RouteKind, RouteSpec, RuleAction, RuleSpec, StaticAddressSpec};
use crate::wire::Family;

/// `RT_SCOPE_NOWHERE` in a deletion: any scope (the kernel's `fib_table_delete`), as
/// `ip route del` sends it.
const ANY_SCOPE: u8 = 255;

impl Netlink {
    /// Adds `route`, replacing a route with the same destination, table and metric.
    pub async fn add_configured_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        let message = self.route_message(route, false).await?;
        self.handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(|source| request(&route.to_string(), "RTM_NEWROUTE", source))
    }

    /// Removes `route` if it is there.
    pub async fn remove_configured_route(&self, route: &RouteSpec) -> Result<(), NetlinkError> {
        let message = match self.route_message(route, true).await {
            // Its interface is gone, and its routes with it.
            Err(NetlinkError::NoSuchLink { .. }) => return Ok(()),
            other => other?,
        };
        match self.handle.route().del(message).execute().await {
            Err(e) if errno(&e) == Some(libc::ESRCH) => Ok(()),
            other => other.map_err(|source| request(&route.to_string(), "RTM_DELROUTE", source)),
        }
    }

    /// Adds `rule`; the same rule already there is left as it is.
    pub async fn add_rule(&self, rule: &RuleSpec) -> Result<(), NetlinkError> {
        let mut add = self.handle.rule().add();
        *add.message_mut() = rule_message(rule);
        match add.execute().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            other => other.map_err(|source| request(&rule.to_string(), "RTM_NEWRULE", source)),
        }
    }

    /// Removes `rule` if it is there.
    pub async fn remove_rule(&self, rule: &RuleSpec) -> Result<(), NetlinkError> {
        match self.handle.rule().del(rule_message(rule)).execute().await {
            Err(e) if errno(&e) == Some(libc::ENOENT) => Ok(()),
            other => other.map_err(|source| request(&rule.to_string(), "RTM_DELRULE", source)),
        }
    }

    /// Adds a static address (a plain one: unlike a VIP, it is the host's own, so it takes
    /// part in source selection and duplicate address detection).
    pub async fn add_static_address(&self, spec: &StaticAddressSpec) -> Result<(), NetlinkError> {
        let index = self.link_message(&spec.dev).await?.header.index;
        let add = self
            .handle
            .address()
            .add(index, spec.address.addr(), spec.address.prefix_len());
        match add.execute().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            other => other.map_err(|source| request(&spec.dev, "RTM_NEWADDR", source)),
        }
    }

    /// Removes a static address if it is there.
    pub async fn remove_static_address(
        &self,
        spec: &StaticAddressSpec,
    ) -> Result<(), NetlinkError> {
        let addr = IfAddr {
            addr: spec.address.addr(),
            prefix_len: spec.address.prefix_len(),
        };
        match self.remove_address(&spec.dev, addr).await {
            Err(NetlinkError::NoSuchLink { .. }) => Ok(()),
            other => other,
        }
    }

    /// The message that adds (or, with `deleting`, removes) `route`; its `dev` is looked up
    /// now.
    async fn route_message(
        &self,
        route: &RouteSpec,
        deleting: bool,
    ) -> Result<RouteMessage, NetlinkError> {
        let dev = match &route.dev {
            Some(dev) => Some(self.link_message(dev).await?.header.index),
            None => None,
        };
        let invalid = |why| NetlinkError::InvalidRoute {
            route: route.to_string(),
            why,
        };
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(route.to.addr(), route.to.prefix_len())
            .map_err(|e| invalid(e.to_string()))?
            .table_id(route.table)
            .protocol(RouteProtocol::from(route.protocol))
            .kind(match route.kind {
                RouteKind::Unicast => RouteType::Unicast,
                RouteKind::Blackhole => RouteType::BlackHole,
                RouteKind::Unreachable => RouteType::Unreachable,
                RouteKind::Prohibit => RouteType::Prohibit,
            });
        if let Some(via) = route.via {
            builder = builder.gateway(via).map_err(|e| invalid(e.to_string()))?;
        }
        if let Some(src) = route.src {
            builder = builder
                .pref_source(src)
                .map_err(|e| invalid(e.to_string()))?;
        }
        if let Some(index) = dev {
            builder = builder.output_interface(index);
        }
        if let Some(metric) = route.metric {
            builder = builder.priority(metric);
        }
        if route.onlink {
            builder = builder.onlink();
        }
        // iproute2's defaults: a unicast route without gateway is scoped to the link; a
        // deletion matches any scope.
        let scope = match route.scope {
            Some(scope) => scope.number(),
            None if deleting => ANY_SCOPE,
            None if route.kind == RouteKind::Unicast && route.via.is_none() => {
                crate::config::RouteScope::Link.number()
            }
            None => 0,
        };
        Ok(builder.scope(RouteScope::from(scope)).build())
    }
}

/// The `RTM_NEWRULE` / `RTM_DELRULE` message of `rule`, as `ip rule` builds it.
fn rule_message(rule: &RuleSpec) -> RuleMessage {
    let mut message = RuleMessage::default();
    message.header.family = match rule.family {
        Family::Ipv4 => AddressFamily::Inet,
        Family::Ipv6 => AddressFamily::Inet6,
    };
    message.header.action = match rule.action {
        RuleAction::Table(table) => {
            // Tables past 255 only fit in FRA_TABLE; the header then says RT_TABLE_UNSPEC.
            match u8::try_from(table) {
                Ok(small) => message.header.table = small,
                Err(_) => message.attributes.push(RuleAttribute::Table(table)),
            }
            NlRuleAction::ToTable
        }
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
    };
    if let Some(from) = rule.from {
        message.header.src_len = from.prefix_len();
        message.attributes.push(RuleAttribute::Source(from.addr()));
    }
    if let Some(to) = rule.to {
        message.header.dst_len = to.prefix_len();
        message
            .attributes
            .push(RuleAttribute::Destination(to.addr()));
    }
    if let Some(iif) = &rule.iif {
        message.attributes.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(oif) = &rule.oif {
        message.attributes.push(RuleAttribute::Oifname(oif.clone()));
    }
    if let Some(priority) = rule.priority {
        message.attributes.push(RuleAttribute::Priority(priority));
    }
    if let Some((mark, mask)) = rule.fwmark {
        message.attributes.push(RuleAttribute::FwMark(mark));
        if let Some(mask) = mask {
            message.attributes.push(RuleAttribute::FwMask(mask));
        }
    }
    message
}
