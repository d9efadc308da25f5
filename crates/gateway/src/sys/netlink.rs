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
