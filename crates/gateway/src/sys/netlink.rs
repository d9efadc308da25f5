//! Kernel routes and interface settings over rtnetlink: the TUN device's
//! MTU, state and address, and a route into it for each remote subnet.
//! No `ip` command is run, so the daemon works in minimal containers.

use std::net::IpAddr;

use anyhow::{anyhow, Context};
use futures_util::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

/// A netlink session for the lifetime of the daemon.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the netlink socket; its connection task runs on the current
    /// tokio runtime.
    pub fn open() -> anyhow::Result<Self> {
        let (conn, handle, _) =
            rtnetlink::new_connection().context("cannot open a netlink socket")?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// The interface index of `name`.
    pub async fn link_index(&self, name: &str) -> anyhow::Result<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let link = links
            .try_next()
            .await
            .with_context(|| format!("cannot find interface {name}"))?
            .ok_or_else(|| anyhow!("interface {name} does not exist"))?;
        Ok(link.header.index)
    }

    /// Sets the MTU and brings the interface up.
    pub async fn set_up(&self, index: u32, mtu: u32) -> anyhow::Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).up().build())
            .execute()
            .await
            .with_context(|| format!("cannot set MTU {mtu} and bring interface {index} up"))
    }

    /// Adds an address to the interface.
    pub async fn add_address(&self, index: u32, net: IpNet) -> anyhow::Result<()> {
        self.handle
            .address()
            .add(index, net.addr(), net.prefix_len())
            .replace()
            .execute()
            .await
            .with_context(|| format!("cannot add address {net} to the TUN device"))
    }

    /// Routes `dest` into the interface (replacing a stale route from an
    /// earlier run that died without cleaning up).
    pub async fn add_route(&self, index: u32, dest: IpNet) -> anyhow::Result<()> {
        let msg = route(index, dest)?;
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .with_context(|| format!("cannot add a route for {dest} into the TUN device"))
    }

    /// Removes a route added by [`Self::add_route`].
    pub async fn del_route(&self, index: u32, dest: IpNet) -> anyhow::Result<()> {
        let msg = route(index, dest)?;
        self.handle
            .route()
            .del(msg)
            .execute()
            .await
            .with_context(|| format!("cannot remove the route for {dest}"))
    }
}

fn route(index: u32, dest: IpNet) -> anyhow::Result<rtnetlink::packet_route::route::RouteMessage> {
    let addr: IpAddr = dest.network();
    Ok(RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(addr, dest.prefix_len())
        .map_err(|e| anyhow!("{e}"))?
        .output_interface(index)
        .protocol(RouteProtocol::Static)
        .build())
}

/// A unicast IPv4/IPv6 route of the main table, as `ipsecgw lab` wants it
/// or reads it back: a destination and either a gateway (`via`) or an
/// output interface (`dev`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableRoute {
    /// Host bits cleared.
    pub destination: IpNet,
    /// The next hop's address, for a route via a gateway.
    pub gateway: Option<IpAddr>,
    /// The output interface's index, for a route into a device.
    pub oif: Option<u32>,
    /// The routing protocol number that installed it (`proto` in `ip route`).
    pub protocol: u8,
}

/// The kernel's main routing table (`RT_TABLE_MAIN`).
const MAIN_TABLE: u32 = 254;

impl Netlink {
    /// Every unicast route of the main IPv4 table, whoever installed it. The
    /// lab tells its own routes from the others' by their protocol number.
    pub async fn main_table_v4(&self) -> anyhow::Result<Vec<TableRoute>> {
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteType};
        let mut dump = self
            .handle
            .route()
            .get(RouteMessageBuilder::<std::net::Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(msg) = dump
            .try_next()
            .await
            .context("cannot read the IPv4 routing table")?
        {
            let mut table = u32::from(msg.header.table);
            let mut destination = None;
            let mut gateway = None;
            let mut oif = None;
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => destination = Some(*a),
                    RouteAttribute::Gateway(RouteAddress::Inet(a)) => {
                        gateway = Some(IpAddr::V4(*a))
                    }
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if table != MAIN_TABLE || msg.header.kind != RouteType::Unicast {
                continue;
            }
            let addr = destination.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            let Ok(net) = ipnet::Ipv4Net::new(addr, msg.header.destination_prefix_length) else {
                continue;
            };
            out.push(TableRoute {
                destination: IpNet::V4(net.trunc()),
                gateway,
                oif,
                protocol: u8::from(msg.header.protocol),
            });
        }
        Ok(out)
    }

    /// Adds `route` to the main table with its protocol number. Fails (the
    /// kernel says "File exists") if the table already holds a route for the
    /// destination: the caller decides what may be replaced.
    pub async fn add_table_route(&self, route: &TableRoute) -> anyhow::Result<()> {
        let msg = table_route(route)?;
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .with_context(|| format!("cannot add the route {}", describe(route)))
    }

    /// Deletes `route` (matched by destination, next hop and protocol, so a
    /// route someone else installed for the same destination is left alone).
    pub async fn del_table_route(&self, route: &TableRoute) -> anyhow::Result<()> {
        let msg = table_route(route)?;
        self.handle
            .route()
            .del(msg)
            .execute()
            .await
            .with_context(|| format!("cannot delete the route {}", describe(route)))
    }
}

fn describe(route: &TableRoute) -> String {
    match (route.gateway, route.oif) {
        (Some(gw), _) => format!("{} via {gw}", route.destination),
        (None, Some(oif)) => format!("{} dev #{oif}", route.destination),
        (None, None) => route.destination.to_string(),
    }
}

fn table_route(route: &TableRoute) -> anyhow::Result<rtnetlink::packet_route::route::RouteMessage> {
    let dest = route.destination;
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dest.network(), dest.prefix_len())
        .map_err(|e| anyhow!("{e:?}"))?
        .protocol(RouteProtocol::from(route.protocol))
        .table_id(MAIN_TABLE);
    if let Some(gw) = route.gateway {
        builder = builder.gateway(gw).map_err(|e| anyhow!("{e:?}"))?;
    }
    if let Some(oif) = route.oif {
        builder = builder.output_interface(oif);
    }
    Ok(builder.build())
}
