//! `ipsecgw`: a userspace IPsec site-to-site VPN gateway.
//!
//! The daemon (`run`) and its CLI (`check`, `status`), and the cloud
//! model's commands (`vpn-gateway`, `customer-gateway`, `ipsec-connection`,
//! `export`, `import`, `route`: the seed tutorial's steps, see `cloud`).
//! The protocol work is in the sans-IO crates (`ipsecgw-esp`,
//! `ipsecgw-policy`, `ipsecgw-ike`); this crate owns every socket, thread
//! and system call.

mod cloud;
mod config;
mod control;
mod daemon;
mod dataplane;
mod health;
mod lab;
mod negotiator;
mod sys;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ipsecgw",
    version,
    about = "Userspace IPsec site-to-site VPN gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway in the foreground until SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        source: cloud::ConfigSource,
    },
    /// Validate a config and say what it would set up.
    Check {
        #[command(flatten)]
        source: cloud::ConfigSource,
    },
    /// Negotiate a connection now (IKE).
    Up {
        /// The connection's name.
        name: String,
        /// The daemon's control socket (gateway.control_socket).
        #[arg(short, long, conflicts_with = "config")]
        socket: Option<PathBuf>,
        /// Find the control socket from this config instead.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Delete a connection's SAs (IKE), telling the peer.
    Down {
        /// The connection's name.
        name: String,
        /// The daemon's control socket (gateway.control_socket).
        #[arg(short, long, conflicts_with = "config")]
        socket: Option<PathBuf>,
        /// Find the control socket from this config instead.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Rekey a connection's CHILD SAs (or with --ike its IKE SA) now.
    Rekey {
        /// The connection's name.
        name: String,
        /// Rekey the IKE SA instead of the CHILD SAs.
        #[arg(long)]
        ike: bool,
        /// The daemon's control socket (gateway.control_socket).
        #[arg(short, long, conflicts_with = "config")]
        socket: Option<PathBuf>,
        /// Find the control socket from this config instead.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Test a connection as the tutorial's last step does: ICMP echoes from
    /// a host address of the local subnet to one of the remote subnet,
    /// across the tunnel; reports loss and round trips, fails if none came back.
    Test {
        /// The connection's name.
        name: String,
        /// Echoes to send.
        #[arg(long, default_value_t = 4)]
        count: u32,
        /// Source address (default: the health check's, else the first host
        /// of the first local subnet).
        #[arg(long)]
        source: Option<std::net::IpAddr>,
        /// Destination address (default: the health check's, else the first
        /// host of the first remote subnet).
        #[arg(long)]
        destination: Option<std::net::IpAddr>,
        /// The daemon's control socket (gateway.control_socket).
        #[arg(short, long, conflicts_with = "config")]
        socket: Option<PathBuf>,
        /// Find the control socket from this config instead.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the running gateway's SAs and counters.
    Status {
        /// The daemon's control socket (gateway.control_socket).
        #[arg(short, long, conflicts_with = "config")]
        socket: Option<PathBuf>,
        /// Find the control socket from this config instead.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    // The cloud model (the tutorial's steps 1 to 5) on a state file.
    /// Tutorial step 1: VPN gateways (cloud side) in the state file.
    #[command(subcommand)]
    VpnGateway(cloud::VpnGatewayCommand),
    /// Tutorial step 2: customer gateways (on-premises devices).
    #[command(subcommand)]
    CustomerGateway(cloud::CustomerGatewayCommand),
    /// Tutorial step 3: IPsec connections between the two.
    #[command(subcommand)]
    IpsecConnection(cloud::IpsecConnectionCommand),
    /// Tutorial step 4: the customer gateway's configuration, from its point
    /// of view (strongSwan, ipsecgw or Alibaba's JSON), key included.
    Export(cloud::ExportArgs),
    /// An ipsecgw CPE config from Alibaba Cloud's downloaded configuration (JSON).
    Import(cloud::ImportArgs),
    /// Tutorial step 5: the VPN gateway's routes.
    #[command(subcommand)]
    Route(cloud::RouteCommand),
    /// The seed's whole network in namespaces: data center, VPCs, CEN, both gateways.
    Lab(lab::LabArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipsecgw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The control socket named on the command line, or in the config.
fn control_path(socket: Option<PathBuf>, config: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match (socket, config) {
        (Some(s), _) => Ok(s),
        (None, Some(c)) => Ok(config::load(&c)?.control_socket),
        (None, None) => anyhow::bail!("say which gateway: --socket PATH or --config FILE"),
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Run { source } => {
            let cfg = source.load()?;
            rt.block_on(daemon::run(cfg))
        }
        Command::Check { source } => {
            let cfg = source.load()?;
            println!(
                "{}: gateway {} at {}, TUN {} (MTU {}, WAN MTU {}), {} connection(s)",
                cfg.path.display(),
                cfg.name,
                cfg.public_address,
                cfg.tun.name,
                cfg.tun.mtu,
                cfg.tun.wan_mtu,
                cfg.connections.len()
            );
            for c in &cfg.connections {
                println!(
                    "  {}: {:?} <-> {:?} via {} ({}), {}",
                    c.name,
                    c.local_subnets,
                    c.remote_subnets,
                    c.remote,
                    c.encapsulation,
                    match (&c.manual, &c.ike) {
                        (Some((o, i)), _) => format!(
                            "manual SAs out {:#x} / in {:#x}, {}",
                            o.spi, i.spi, o.algorithm
                        ),
                        (None, Some(ike)) => format!(
                            "IKEv2 {} (start: {:?}), ESP {}",
                            ike.proposals
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(","),
                            ike.start_action,
                            c.esp.algorithm
                        ),
                        (None, None) => "no SA configured: its traffic is dropped".into(),
                    }
                );
            }
            Ok(())
        }
        Command::Up {
            name,
            socket,
            config,
        } => {
            let path = control_path(socket, config)?;
            println!(
                "{}",
                rt.block_on(control::request(&path, &format!("up {name}")))?
            );
            Ok(())
        }
        Command::Down {
            name,
            socket,
            config,
        } => {
            let path = control_path(socket, config)?;
            println!(
                "{}",
                rt.block_on(control::request(&path, &format!("down {name}")))?
            );
            Ok(())
        }
        Command::Rekey {
            name,
            ike,
            socket,
            config,
        } => {
            let path = control_path(socket, config)?;
            let verb = if ike { "rekey-ike" } else { "rekey" };
            println!(
                "{}",
                rt.block_on(control::request(&path, &format!("{verb} {name}")))?
            );
            Ok(())
        }
        Command::Test {
            name,
            count,
            source,
            destination,
            socket,
            config,
            json,
        } => {
            let path = control_path(socket, config)?;
            let mut line = format!("test {name} count={count}");
            if let Some(s) = source {
                line += &format!(" source={s}");
            }
            if let Some(d) = destination {
                line += &format!(" destination={d}");
            }
            let r = rt.block_on(control::request_test(&path, &line))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", control::render_test(&r));
            }
            if r.received == 0 {
                anyhow::bail!(
                    "connection {} failed the test: no reply from {}{}",
                    r.connection,
                    r.destination,
                    if r.sa_installed {
                        ""
                    } else {
                        " (it has no SA: the tunnel is down, see `ipsecgw status`)"
                    }
                );
            }
            Ok(())
        }
        Command::Status {
            socket,
            config,
            json,
        } => {
            let path = control_path(socket, config)?;
            let status = rt.block_on(control::request_status(&path))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", control::render(&status));
            }
            Ok(())
        }
        Command::VpnGateway(command) => cloud::vpn_gateway(command),
        Command::CustomerGateway(command) => cloud::customer_gateway(command),
        Command::IpsecConnection(command) => cloud::ipsec_connection(command),
        Command::Export(args) => cloud::export(args),
        Command::Import(args) => cloud::import(args),
        Command::Route(command) => cloud::route(command),
        Command::Lab(args) => lab::run(args, &rt),
    }
}
