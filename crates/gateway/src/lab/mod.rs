//! `ipsecgw lab`: a whole Alibaba-Cloud-style network on one Linux machine,
//! in network namespaces. The on-premises data center behind its customer
//! gateway, the VPCs attached to a CEN instance, and the VPN gateway in
//! front of one of them, the two gateways being `ipsecgw run` with IKEv2.
//!
//! The lab keeps a [`ipsecgw_policy::cen::Cen`] (the route engine) and
//! applies the tables it computes to the namespaces over netlink, so
//! publishing a route to the CEN (`lab publish`) changes who can reach whom
//! exactly as the cloud would. Everything it builds comes from a spec file
//! ([`spec`]); the code holds no address of its own.
//!
//! Each command is a separate process: the state between them lives in the
//! instance's state directory ([`state`]) and in the namespaces and daemons
//! themselves.

mod apply;
mod commands;
mod daemons;
mod netns;
mod routes;
mod show;
mod spec;
mod state;
mod topology;
mod up;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use ipnet::IpNet;

use routes::{HopKind, Op};
use spec::OnpremRoutes;
use state::State;

/// The lab's options common to every subcommand, and the subcommand.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The lab instance (namespaces are named ipsgwlab-<name>-*).
    #[arg(long, global = true, value_name = "INSTANCE")]
    name: Option<String>,
    /// The instance's state directory [default: /run/ipsecgw-lab/<name>].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: LabCmd,
}

/// `ipsecgw lab` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCmd {
    /// Build the spec's network in namespaces, start both gateways, apply
    /// the CEN's routes and wait for the IKE SA.
    Up {
        /// The lab spec (TOML).
        #[arg(long, default_value = "configs/lab/seed.toml")]
        spec: PathBuf,
        /// Override the spec's on-premises routes: one per VPC, or 0.0.0.0/0.
        #[arg(long, value_enum)]
        onprem_routes: Option<OnpremRoutes>,
    },
    /// Stop the gateways, delete the namespaces and the state dir (also
    /// after a crash).
    Down,
    /// Publish a VPC's route to the CEN (PublishRouteEntries).
    Publish {
        /// The VPC.
        network: String,
        /// The route's destination: a CIDR, or a network name for its block.
        destination: String,
    },
    /// Withdraw a published route from the CEN (WithdrawPublishedRouteEntries).
    Withdraw {
        /// The VPC.
        network: String,
        /// The route's destination: a CIDR, or a network name for its block.
        destination: String,
    },
    /// Add a custom route to a VPC.
    RouteAdd {
        /// The VPC.
        network: String,
        /// The route's destination: a CIDR, or a network name for its block.
        destination: String,
        /// Where it points: the VPC's VPN gateway, or its host (as an ECS instance).
        #[arg(long, value_enum)]
        next_hop: HopKind,
    },
    /// Delete a custom route from a VPC (and so from the CEN).
    RouteDelete {
        /// The VPC.
        network: String,
        /// The route's destination: a CIDR, or a network name for its block.
        destination: String,
    },
    /// Show each network's effective route table, where each route came
    /// from, and the CEN's published routes.
    Routes {
        /// Only this network (or `cen`).
        network: Option<String>,
        /// Also show the namespaces' kernel tables.
        #[arg(long)]
        kernel: bool,
    },
    /// Ping from one network's host to another's (or to an address).
    Ping {
        /// The network whose host sends.
        from: String,
        /// The network whose host answers, or an IPv4 address.
        to: String,
        /// Echoes to send.
        #[arg(long, default_value_t = 3)]
        count: u32,
        /// Seconds to wait for each reply.
        #[arg(long, default_value_t = 2)]
        wait: u32,
    },
    /// Show what runs: namespaces, gateways and their SAs, route operations.
    Status,
    /// (internal) Inside one namespace: set sysctls and sync the lab's routes.
    #[command(hide = true)]
    NetnsApply {
        /// key=value under /proc/sys.
        #[arg(long = "sysctl")]
        sysctls: Vec<String>,
        /// DEST=via:ADDR or DEST=dev:NAME; the lab's other routes go.
        #[arg(long = "route")]
        routes: Vec<String>,
    },
}

/// Runs a lab subcommand.
pub fn run(args: LabArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    // The binary re-executes itself inside the namespaces.
    let exe = std::env::current_exe().context("cannot find the ipsecgw binary's own path")?;
    if let LabCmd::NetnsApply { sysctls, routes } = &args.cmd {
        let wants = routes
            .iter()
            .map(|r| r.parse())
            .collect::<anyhow::Result<Vec<routes::Want>>>()?;
        return rt.block_on(apply::netns_apply(sysctls, &wants));
    }
    let state = State::locate(args.name.as_deref(), args.state_dir.as_deref())?;
    let op = |make: fn(String, IpNet) -> Op, network: String, destination: String| {
        let (_, spec) = state.load()?;
        let destination = routes::parse_destination(&spec, &destination)?;
        commands::route_op(&state, make(network, destination), &exe)
    };
    match args.cmd {
        LabCmd::Up {
            spec,
            onprem_routes,
        } => rt.block_on(up::up(&state, &spec, onprem_routes, &exe)),
        LabCmd::Down => up::down(&state),
        LabCmd::Publish {
            network,
            destination,
        } => op(
            |network, destination| Op::Publish {
                network,
                destination,
            },
            network,
            destination,
        ),
        LabCmd::Withdraw {
            network,
            destination,
        } => op(
            |network, destination| Op::Withdraw {
                network,
                destination,
            },
            network,
            destination,
        ),
        LabCmd::RouteDelete {
            network,
            destination,
        } => op(
            |network, destination| Op::RouteDelete {
                network,
                destination,
            },
            network,
            destination,
        ),
        LabCmd::RouteAdd {
            network,
            destination,
            next_hop,
        } => {
            let (_, spec) = state.load()?;
            let destination = routes::parse_destination(&spec, &destination)?;
            commands::route_op(
                &state,
                Op::RouteAdd {
                    network,
                    destination,
                    next_hop,
                },
                &exe,
            )
        }
        LabCmd::Routes { network, kernel } => {
            let (_, spec) = state.load()?;
            let cen = routes::replay(&spec, &state.ops()?)?;
            print!(
                "{}",
                show::routes(&state, &spec, &cen, network.as_deref(), kernel)?
            );
            Ok(())
        }
        LabCmd::Ping {
            from,
            to,
            count,
            wait,
        } => commands::ping(&state, &from, &to, count, wait),
        LabCmd::Status => {
            let (record, spec) = state.load()?;
            let ops = state.ops()?;
            let cen = routes::replay(&spec, &ops)?;
            rt.block_on(show::status(&state, &record, &spec, &cen, &ops))
        }
        LabCmd::NetnsApply { .. } => Ok(()),
    }
}
