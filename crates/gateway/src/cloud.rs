//! The seed tutorial's procedure as commands, working on a cloud "state
//! file" (the model in `ipsecgw_policy::model`): create a VPN gateway, a
//! customer gateway and an IPsec connection, export the configuration of
//! the customer gateway's device (or import one downloaded from Alibaba
//! Cloud's console), configure routes; and run a VPN gateway of the state
//! file (`ipsecgw run --state FILE --vpn-gateway NAME`).
//!
//! The state file holds pre-shared keys, so it is written readable by its
//! owner only (0600), and atomically (a temp file in the same directory,
//! then a rename), so a crash or a refused change never leaves half a file.
//! A generated key is printed once, by `ipsec-connection create`, to
//! stdout; nothing here logs one.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ipnet::IpNet;
use ipsecgw_policy::model::{
    import_alibaba, ConnectionSpec, CpeDevice, CustomerGateway, ExportFormat, HealthCheckSpec,
    Model, Psk, Route, VpnGateway, WEIGHT_ACTIVE,
};

use crate::config;

/// Where the state file is when neither `--state` nor `$IPSECGW_STATE` say.
pub const DEFAULT_STATE: &str = "/var/lib/ipsecgw/cloud.toml";
/// The environment variable naming the state file.
pub const STATE_ENV: &str = "IPSECGW_STATE";

/// `--state FILE`, shared by every command that reads or writes the state.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArg {
    /// The cloud state file (default: $IPSECGW_STATE, else
    /// /var/lib/ipsecgw/cloud.toml). Holds pre-shared keys: written mode 0600.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

impl StateArg {
    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.state
            .clone()
            .or_else(|| {
                std::env::var_os(STATE_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE))
    }
}

/// Which config `run` and `check` use: a device config file, or a VPN
/// gateway of the state file.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigSource {
    /// The gateway's TOML config.
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "vpn_gateway",
        conflicts_with_all = ["vpn_gateway", "state"]
    )]
    pub config: Option<PathBuf>,
    /// Instead of --config: run this VPN gateway of the cloud state file.
    #[arg(long, value_name = "NAME")]
    pub vpn_gateway: Option<String>,
    #[command(flatten)]
    pub state: StateArg,
}

impl ConfigSource {
    /// Loads the device config: the file, or the VPN gateway's config
    /// rendered from the state file and parsed in memory (the pre-shared
    /// keys never touch the disk again), with the state file's path in
    /// messages.
    pub fn load(&self) -> anyhow::Result<config::Config> {
        match (&self.config, &self.vpn_gateway) {
            (Some(path), _) => Ok(config::load(path)?),
            (None, Some(gateway)) => {
                let path = self.state.path();
                let model = read_state(&path)?;
                let text = model.render_vpn_gateway(gateway)?;
                config::parse(&path, &text, &|name| std::env::var(name).ok()).with_context(|| {
                    format!(
                        "the device config rendered for VPN gateway {gateway:?} from {}",
                        path.display()
                    )
                })
            }
            (None, None) => {
                anyhow::bail!(
                    "say which gateway: --config FILE, or --vpn-gateway NAME [--state FILE]"
                )
            }
        }
    }
}

// ---- the state file -------------------------------------------------------

/// Reads and validates the state file; a missing one is an error that says
/// how to create it.
pub fn read_state(path: &Path) -> anyhow::Result<Model> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no state file at {}: create a VPN gateway first (`ipsecgw vpn-gateway create`), or name the file with --state or ${STATE_ENV}",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(Model::parse(path, &text)?)
}

/// The state file, or an empty model when there is none yet (the create
/// commands start from nothing).
fn read_or_new_state(path: &Path) -> anyhow::Result<Model> {
    if path.exists() {
        read_state(path)
    } else {
        Ok(Model::empty(path))
    }
}

/// Writes `text` to `path` readable by its owner only: into a fresh temp
/// file beside it (mode 0600 from creation, so no other user can open it
/// in between), synced, then renamed over `path`. Parent directories are
/// created (0700).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn save_state(model: &Model) -> anyhow::Result<()> {
    write_private(model.path(), &model.to_toml())
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

// ---- step 1: VPN gateways --------------------------------------------------

/// `ipsecgw vpn-gateway ...`
#[derive(Debug, clap::Subcommand)]
pub enum VpnGatewayCommand {
    /// Create a VPN gateway in front of a VPC (tutorial step 1).
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its public (WAN) address.
        #[arg(long, value_name = "ADDRESS")]
        public_address: IpAddr,
        /// The VPC it fronts.
        #[arg(long, value_name = "NAME")]
        vpc: String,
        /// The VPC's CIDR blocks.
        #[arg(long, value_name = "CIDR", num_args = 1.., required = true)]
        vpc_cidr: Vec<IpNet>,
        /// How many IPsec connections it takes (the product's default: 10).
        #[arg(long, default_value_t = ipsecgw_policy::model::DEFAULT_CONNECTION_LIMIT)]
        connection_limit: u32,
        /// The bandwidth of its specification (a note).
        #[arg(long, value_name = "MBPS")]
        bandwidth_mbps: Option<u32>,
        /// Its TUN device (default ipsgw-NAME).
        #[arg(long, value_name = "IFNAME")]
        tun_name: Option<String>,
        /// Its control socket (default /run/ipsecgw/NAME.sock).
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
        #[command(flatten)]
        state: StateArg,
    },
    /// List the VPN gateways.
    List {
        #[command(flatten)]
        state: StateArg,
    },
}

/// Runs a `vpn-gateway` command.
pub fn vpn_gateway(command: VpnGatewayCommand) -> anyhow::Result<()> {
    match command {
        VpnGatewayCommand::Create {
            name,
            public_address,
            vpc,
            vpc_cidr,
            connection_limit,
            bandwidth_mbps,
            tun_name,
            control_socket,
            state,
        } => {
            let mut model = read_or_new_state(&state.path())?;
            let gateway = VpnGateway {
                connection_limit,
                bandwidth_mbps,
                tun_name,
                control_socket,
                ..VpnGateway::new(&name, public_address, &vpc, vpc_cidr)
            };
            let summary = format!(
                "Created VPN gateway {name} at {public_address} in front of VPC {vpc} ({}), for up to {connection_limit} IPsec connections.",
                join(&gateway.vpc_cidr)
            );
            model.add_vpn_gateway(gateway)?;
            save_state(&model)?;
            println!("{summary}");
            println!("State: {}", model.path().display());
            Ok(())
        }
        VpnGatewayCommand::List { state } => {
            let model = read_state(&state.path())?;
            println!(
                "{:<16} {:<16} {:<16} {:<24} CONNECTIONS",
                "NAME", "PUBLIC-ADDRESS", "VPC", "VPC-CIDR"
            );
            for g in model.vpn_gateways() {
                let used = model
                    .connections()
                    .iter()
                    .filter(|c| c.vpn_gateway == g.name)
                    .count();
                println!(
                    "{:<16} {:<16} {:<16} {:<24} {used}/{}",
                    g.name,
                    g.public_address,
                    g.vpc,
                    join(&g.vpc_cidr),
                    g.connection_limit
                );
            }
            Ok(())
        }
    }
}

// ---- step 2: customer gateways ---------------------------------------------

/// `ipsecgw customer-gateway ...`
#[derive(Debug, clap::Subcommand)]
pub enum CustomerGatewayCommand {
    /// Register the on-premises device (tutorial step 2).
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// The device's static public address.
        #[arg(long, value_name = "ADDRESS")]
        public_address: IpAddr,
        /// The IKE identity it presents (an FQDN or an address), if not its address.
        #[arg(long, value_name = "ID")]
        identity: Option<String>,
        /// Its BGP AS number (a note).
        #[arg(long)]
        asn: Option<u32>,
        #[command(flatten)]
        state: StateArg,
    },
    /// List the customer gateways.
    List {
        #[command(flatten)]
        state: StateArg,
    },
}

/// Runs a `customer-gateway` command.
pub fn customer_gateway(command: CustomerGatewayCommand) -> anyhow::Result<()> {
    match command {
        CustomerGatewayCommand::Create {
            name,
            public_address,
            identity,
            asn,
            state,
        } => {
            let mut model = read_or_new_state(&state.path())?;
            model.add_customer_gateway(CustomerGateway {
                identity,
                asn,
                ..CustomerGateway::new(&name, public_address)
            })?;
            save_state(&model)?;
            println!("Created customer gateway {name} at {public_address}.");
            println!("State: {}", model.path().display());
            Ok(())
        }
        CustomerGatewayCommand::List { state } => {
            let model = read_state(&state.path())?;
            println!(
                "{:<16} {:<16} {:<24} ASN",
                "NAME", "PUBLIC-ADDRESS", "IDENTITY"
            );
            for g in model.customer_gateways() {
                println!(
                    "{:<16} {:<16} {:<24} {}",
                    g.name,
                    g.public_address,
                    g.identity.as_deref().unwrap_or("-"),
                    g.asn.map_or_else(|| "-".into(), |a| a.to_string())
                );
            }
            Ok(())
        }
    }
}

// ---- step 3: IPsec connections ----------------------------------------------

/// `ipsecgw ipsec-connection create` arguments.
#[derive(Debug, clap::Args)]
pub struct ConnectionArgs {
    /// Its name.
    #[arg(long)]
    name: String,
    /// The VPN gateway (cloud side).
    #[arg(long, value_name = "NAME")]
    vpn_gateway: String,
    /// The customer gateway (on-premises side).
    #[arg(long, value_name = "NAME")]
    customer_gateway: String,
    /// The cloud side's subnets.
    #[arg(long, value_name = "CIDR", num_args = 1.., required = true)]
    local_subnet: Vec<IpNet>,
    /// The on-premises subnets.
    #[arg(long, value_name = "CIDR", num_args = 1.., required = true)]
    remote_subnet: Vec<IpNet>,
    /// The pre-shared key (generated, and shown once, when left out).
    #[arg(long, value_name = "KEY")]
    psk: Option<String>,
    /// A preset: alibaba-default (the console's aes / md5 / group2; needs --legacy).
    #[arg(long)]
    profile: Option<String>,
    /// Accept DES, 3DES, MD5 and groups 1, 2 and 5.
    #[arg(long)]
    legacy: bool,
    /// Negotiate now rather than when traffic first arrives.
    #[arg(long)]
    effect_immediately: bool,
    /// Phase 1 encryption: aes, aes192, aes256, des, 3des.
    #[arg(long, value_name = "ALG")]
    ike_encryption: Option<String>,
    /// Phase 1 integrity: md5, sha1, sha256, sha384, sha512.
    #[arg(long, value_name = "ALG")]
    ike_integrity: Option<String>,
    /// Phase 1 DH group: group1, group2, group5, group14.
    #[arg(long, value_name = "GROUP")]
    dh_group: Option<String>,
    /// Phase 1 lifetime in seconds (0 to 86400).
    #[arg(long, value_name = "SECONDS")]
    ike_lifetime: Option<u64>,
    /// The VPN gateway's IKE identity (default: its address).
    #[arg(long, value_name = "ID")]
    local_id: Option<String>,
    /// The customer gateway's IKE identity (default: its identity or address).
    #[arg(long, value_name = "ID")]
    remote_id: Option<String>,
    /// Phase 2 encryption.
    #[arg(long, value_name = "ALG")]
    ipsec_encryption: Option<String>,
    /// Phase 2 integrity.
    #[arg(long, value_name = "ALG")]
    ipsec_integrity: Option<String>,
    /// Phase 2 PFS group, or disabled.
    #[arg(long, value_name = "GROUP")]
    pfs: Option<String>,
    /// Phase 2 lifetime in seconds (0 to 86400).
    #[arg(long, value_name = "SECONDS")]
    ipsec_lifetime: Option<u64>,
    /// Turn dead peer detection off.
    #[arg(long)]
    no_dpd: bool,
    /// Turn NAT traversal off (raw ESP instead of ESP in UDP).
    #[arg(long)]
    no_nat_traversal: bool,
    /// Health check: the probe's source, in the local subnets.
    #[arg(long, value_name = "ADDRESS", requires = "health_check_destination")]
    health_check_source: Option<IpAddr>,
    /// Health check: the address probed, in the remote subnets.
    #[arg(long, value_name = "ADDRESS", requires = "health_check_source")]
    health_check_destination: Option<IpAddr>,
    #[command(flatten)]
    state: StateArg,
}

/// `ipsecgw ipsec-connection ...`
#[derive(Debug, clap::Subcommand)]
pub enum IpsecConnectionCommand {
    /// Create an IPsec connection between a VPN gateway and a customer
    /// gateway (tutorial step 3). Prints a generated pre-shared key once.
    Create(Box<ConnectionArgs>),
    /// List the IPsec connections (never their keys).
    List {
        #[command(flatten)]
        state: StateArg,
    },
}

/// Runs an `ipsec-connection` command.
pub fn ipsec_connection(command: IpsecConnectionCommand) -> anyhow::Result<()> {
    match command {
        IpsecConnectionCommand::Create(args) => create_connection(*args),
        IpsecConnectionCommand::List { state } => {
            let model = read_state(&state.path())?;
            println!(
                "{:<14} {:<12} {:<14} {:<20} {:<20} {:<24} ESP",
                "NAME", "VPN-GATEWAY", "CUSTOMER-GW", "LOCAL", "REMOTE", "IKE"
            );
            for c in model.connections() {
                println!(
                    "{:<14} {:<12} {:<14} {:<20} {:<20} {:<24} {}{}",
                    c.name,
                    c.vpn_gateway,
                    c.customer_gateway,
                    join(&c.local_subnets),
                    join(&c.remote_subnets),
                    c.ike_proposal(),
                    c.esp_proposal(),
                    c.ipsec.pfs.map(|g| format!(" pfs {g}")).unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn create_connection(a: ConnectionArgs) -> anyhow::Result<()> {
    let mut model = read_state(&a.state.path())?;
    let mut spec = ConnectionSpec::new(
        &a.name,
        &a.vpn_gateway,
        &a.customer_gateway,
        a.local_subnet,
        a.remote_subnet,
    );
    spec.psk = a.psk.map(Psk::new);
    spec.profile = a.profile;
    spec.legacy = a.legacy;
    spec.effect_immediately = a.effect_immediately;
    spec.dpd = Some(!a.no_dpd);
    spec.nat_traversal = Some(!a.no_nat_traversal);
    spec.ike.encryption = a.ike_encryption;
    spec.ike.integrity = a.ike_integrity;
    spec.ike.dh_group = a.dh_group;
    spec.ike.lifetime = a.ike_lifetime;
    spec.ike.local_id = a.local_id;
    spec.ike.remote_id = a.remote_id;
    spec.ipsec.encryption = a.ipsec_encryption;
    spec.ipsec.integrity = a.ipsec_integrity;
    spec.ipsec.pfs = a.pfs;
    spec.ipsec.lifetime = a.ipsec_lifetime;
    spec.health_check = match (a.health_check_source, a.health_check_destination) {
        (Some(source), Some(destination)) => Some(HealthCheckSpec {
            source,
            destination,
            interval: None,
            retries: None,
        }),
        _ => None,
    };
    // The OS's randomness for a generated key; a failure is kept and
    // reported instead of a key made from whatever the buffer held.
    let mut rng_error = None;
    let generated = model.add_connection(spec, &mut |buf: &mut [u8]| {
        if let Err(e) = rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, buf) {
            rng_error = Some(e);
        }
    })?;
    if let Some(e) = rng_error {
        anyhow::bail!("cannot read the system's randomness for a pre-shared key: {e}");
    }
    save_state(&model)?;
    let c = model
        .connection(&a.name)
        .context("the connection just created is missing")?;
    println!(
        "Created IPsec connection {} between VPN gateway {} and customer gateway {}: {} <-> {}, IKEv2 {}, ESP {} ({}), {}.",
        c.name,
        c.vpn_gateway,
        c.customer_gateway,
        join(&c.local_subnets),
        join(&c.remote_subnets),
        c.ike_proposal(),
        c.esp_proposal(),
        c.ipsec
            .pfs
            .map_or_else(|| "PFS disabled".to_owned(), |g| format!("PFS {g}")),
        if c.effect_immediately {
            "negotiating immediately"
        } else {
            "negotiating when traffic first arrives"
        }
    );
    println!("State: {}", model.path().display());
    if let Some(psk) = generated {
        println!("Pre-shared key: {}", psk.expose());
        println!(
            "This key is shown once and never listed again; `ipsecgw export {} --for strongswan|ipsecgw|alibaba` writes it into the customer gateway's configuration.",
            c.name
        );
    }
    Ok(())
}

// ---- step 4: the customer gateway's configuration -----------------------------

/// The formats of `export --for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFor {
    /// strongSwan's swanctl.conf.
    Strongswan,
    /// An ipsecgw device config.
    Ipsecgw,
    /// Alibaba Cloud's DownloadVpnConnectionConfig JSON.
    Alibaba,
}

/// `ipsecgw export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The IPsec connection.
    connection: String,
    /// The configuration's format.
    #[arg(long = "for", value_enum, value_name = "FORMAT")]
    format: ExportFor,
    /// Write it to FILE (mode 0600) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// ipsecgw format: the CPE's TUN device (default ipsgw-CUSTOMER_GATEWAY).
    #[arg(long, value_name = "IFNAME")]
    tun_name: Option<String>,
    /// ipsecgw format: the CPE's control socket (default /run/ipsecgw/CUSTOMER_GATEWAY.sock).
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    #[command(flatten)]
    state: StateArg,
}

/// `ipsecgw import` arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The JSON of Alibaba Cloud's "download configuration" (DownloadVpnConnectionConfig).
    file: PathBuf,
    /// Write the CPE config to FILE (mode 0600) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The device's name (default cpe).
    #[arg(long)]
    name: Option<String>,
    /// The connection's name (default alibaba-vpn).
    #[arg(long, value_name = "NAME")]
    connection: Option<String>,
    /// The device's WAN address, when it differs from the file's Local (a CPE behind NAT).
    #[arg(long, value_name = "ADDRESS")]
    public_address: Option<IpAddr>,
    /// The TUN device (default ipsgw-NAME).
    #[arg(long, value_name = "IFNAME")]
    tun_name: Option<String>,
    /// The control socket (default /run/ipsecgw/NAME.sock).
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
}

/// Writes `text` to `output` (0600) or stdout.
fn emit(text: &str, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => write_private(path, text),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// `ipsecgw export CONNECTION --for FORMAT`: tutorial step 4.
pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    let model = read_state(&a.state.path())?;
    let format = match a.format {
        ExportFor::Strongswan => ExportFormat::Strongswan,
        ExportFor::Ipsecgw => ExportFormat::Ipsecgw,
        ExportFor::Alibaba => ExportFormat::Alibaba,
    };
    let device = CpeDevice {
        tun_name: a.tun_name,
        control_socket: a.control_socket,
        ..CpeDevice::default()
    };
    let text = model.export_with(&a.connection, format, &device)?;
    emit(&text, a.output.as_deref())?;
    if let Some(path) = &a.output {
        eprintln!(
            "Wrote the customer gateway's configuration for {} to {} (mode 0600: it holds the pre-shared key).",
            a.connection,
            path.display()
        );
    }
    Ok(())
}

/// `ipsecgw import FILE.json`: a CPE config from Alibaba's download.
pub fn import(a: ImportArgs) -> anyhow::Result<()> {
    let json =
        fs::read_to_string(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let cpe = import_alibaba(&a.file, &json)?;
    let device = CpeDevice {
        gateway_name: a.name,
        connection_name: a.connection,
        public_address: a.public_address,
        tun_name: a.tun_name,
        control_socket: a.control_socket,
    };
    let text = cpe.to_ipsecgw(&a.file, &device)?;
    emit(&text, a.output.as_deref())?;
    eprintln!(
        "CPE config for the VPN gateway at {}: {} <-> {}, IKEv2 {}, ESP {}{}.",
        cpe.remote_address,
        join(&cpe.local_subnets),
        join(&cpe.remote_subnets),
        cpe.ike.proposal(),
        cpe.ipsec.strongswan_proposal(),
        match &a.output {
            Some(p) => format!(
                "; written to {} (mode 0600), run it with `ipsecgw run --config {}`",
                p.display(),
                p.display()
            ),
            None => String::new(),
        }
    );
    Ok(())
}

// ---- step 5: routes -------------------------------------------------------------

/// Which route(s) `route publish` and `route withdraw` mean.
#[derive(Debug, clap::Args)]
pub struct RouteSelector {
    /// The VPN gateway.
    #[arg(long, value_name = "NAME")]
    vpn_gateway: String,
    /// The destination CIDR.
    #[arg(long, value_name = "CIDR")]
    destination: IpNet,
    /// The source CIDR of a policy-based route.
    #[arg(long, value_name = "CIDR")]
    source: Option<IpNet>,
    /// Only the route via this connection.
    #[arg(long, value_name = "CONNECTION")]
    next_hop: Option<String>,
    #[command(flatten)]
    state: StateArg,
}

/// `ipsecgw route ...`
#[derive(Debug, clap::Subcommand)]
pub enum RouteCommand {
    /// Add a route to a VPN gateway (tutorial step 5): destination-based, or
    /// policy-based with --source (which wins).
    Add {
        /// The VPN gateway.
        #[arg(long, value_name = "NAME")]
        vpn_gateway: String,
        /// The destination CIDR (on the premises).
        #[arg(long, value_name = "CIDR")]
        destination: IpNet,
        /// The source CIDR (in the VPC): makes it a policy-based route.
        #[arg(long, value_name = "CIDR")]
        source: Option<IpNet>,
        /// The IPsec connection it sends into.
        #[arg(long, value_name = "CONNECTION")]
        next_hop: String,
        /// 100 (active) or 0 (standby).
        #[arg(long, default_value_t = WEIGHT_ACTIVE)]
        weight: u32,
        /// Publish it to the VPC's route table.
        #[arg(long)]
        publish: bool,
        #[command(flatten)]
        state: StateArg,
    },
    /// List the routes.
    List {
        /// Only this VPN gateway's.
        #[arg(long, value_name = "NAME")]
        vpn_gateway: Option<String>,
        #[command(flatten)]
        state: StateArg,
    },
    /// Publish a route to the VPC's route table.
    Publish(RouteSelector),
    /// Withdraw a route from the VPC's route table.
    Withdraw(RouteSelector),
}

/// Runs a `route` command.
pub fn route(command: RouteCommand) -> anyhow::Result<()> {
    match command {
        RouteCommand::Add {
            vpn_gateway,
            destination,
            source,
            next_hop,
            weight,
            publish,
            state,
        } => {
            let mut model = read_state(&state.path())?;
            model.add_route(Route {
                source,
                weight,
                publish_to_vpc: publish,
                ..Route::new(&vpn_gateway, destination, &next_hop)
            })?;
            save_state(&model)?;
            println!(
                "Added a {} route on {vpn_gateway}: {}{destination} via {next_hop}, weight {weight} ({}), {}.",
                if source.is_some() { "policy-based" } else { "destination-based" },
                source.map(|s| format!("from {s} to ")).unwrap_or_default(),
                if weight == WEIGHT_ACTIVE { "active" } else { "standby" },
                if publish { "published to the VPC" } else { "not published" }
            );
            Ok(())
        }
        RouteCommand::List { vpn_gateway, state } => {
            let model = read_state(&state.path())?;
            println!(
                "{:<14} {:<18} {:<18} {:<14} {:<7} PUBLISHED",
                "VPN-GATEWAY", "DESTINATION", "SOURCE", "NEXT-HOP", "WEIGHT"
            );
            for r in model
                .routes()
                .iter()
                .filter(|r| vpn_gateway.as_ref().is_none_or(|g| &r.vpn_gateway == g))
            {
                println!(
                    "{:<14} {:<18} {:<18} {:<14} {:<7} {}",
                    r.vpn_gateway,
                    r.destination.to_string(),
                    r.source.map_or_else(|| "-".into(), |s| s.to_string()),
                    r.next_hop,
                    r.weight,
                    if r.publish_to_vpc { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        RouteCommand::Publish(s) => set_published(s, true),
        RouteCommand::Withdraw(s) => set_published(s, false),
    }
}

fn set_published(s: RouteSelector, publish: bool) -> anyhow::Result<()> {
    let mut model = read_state(&s.state.path())?;
    let n = model.set_route_published(
        &s.vpn_gateway,
        s.destination,
        s.source,
        s.next_hop.as_deref(),
        publish,
    )?;
    save_state(&model)?;
    println!(
        "{} {n} route(s) to {} on {} {} the VPC's route table.",
        if publish { "Published" } else { "Withdrew" },
        s.destination,
        s.vpn_gateway,
        if publish { "to" } else { "from" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The model's renderings read by the daemon's own config parser: what
    //! `run --state` and an exported ipsecgw config will meet.

    use super::*;
    use ipsecgw_policy::model::ExportFormat;

    const STATE: &str = r#"
[[vpn_gateway]]
name = "vpn-hz"
public_address = "198.51.100.2"
vpc = "hangzhou-vpc"
vpc_cidr = ["192.168.4.0/24"]

[[customer_gateway]]
name = "onprem-cpe"
public_address = "198.51.100.1"
identity = "cpe.example.com"

[[customer_gateway]]
name = "branch-cpe"
public_address = "203.0.113.7"

[[ipsec_connection]]
name = "onprem"
vpn_gateway = "vpn-hz"
customer_gateway = "onprem-cpe"
local_subnets = ["192.168.4.0/24"]
remote_subnets = ["10.1.1.0/24"]
psk = "a-test-pre-shared-key"

[[ipsec_connection]]
name = "branch"
vpn_gateway = "vpn-hz"
customer_gateway = "branch-cpe"
local_subnets = ["192.168.4.0/24"]
remote_subnets = ["10.2.0.0/16"]
psk = "another-test-key"
effect_immediately = true
dpd = false
nat_traversal = false
profile = "alibaba-default"
legacy = true
"#;

    const ROUTES: &str = r#"
[ipsec_connection.health_check]
source = "192.168.4.1"
destination = "10.2.0.10"

[[route]]
vpn_gateway = "vpn-hz"
destination = "10.1.1.0/24"
next_hop = "onprem"
publish_to_vpc = true

[[route]]
vpn_gateway = "vpn-hz"
destination = "10.2.0.0/16"
source = "192.168.4.0/25"
next_hop = "branch"
weight = 0
"#;

    fn model(text: &str) -> Model {
        Model::parse(Path::new("/state/cloud.toml"), text).unwrap()
    }

    fn device(text: &str) -> config::Config {
        config::parse(Path::new("/state/cloud.toml"), text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn the_rendered_vpn_gateway_is_a_valid_device_config() {
        let m = model(STATE);
        let cfg = device(&m.render_vpn_gateway("vpn-hz").unwrap());
        assert_eq!(cfg.name, "vpn-hz");
        assert_eq!(cfg.public_address.to_string(), "198.51.100.2");
        assert_eq!(cfg.tun.name, "ipsgw-vpn-hz");
        assert_eq!(cfg.control_socket, Path::new("/run/ipsecgw/vpn-hz.sock"));
        assert_eq!(cfg.connections.len(), 2);
        let c = &cfg.connections[0];
        assert_eq!(c.name, "onprem");
        assert_eq!(c.remote.to_string(), "198.51.100.1:4500");
        assert_eq!(c.encapsulation, config::Encapsulation::Udp);
        assert_eq!(c.esp.algorithm.to_string(), "aes256-sha256");
        assert!(!c.esp.esn);
        assert_eq!(
            c.esp.pfs.map(|g| g.to_string()).as_deref(),
            Some("modp2048")
        );
        assert_eq!(
            c.esp.lifetime_time,
            Some(std::time::Duration::from_secs(86400))
        );
        let ike = c.ike.as_ref().unwrap();
        assert_eq!(
            ike.proposals[0].to_string(),
            "aes256-sha256-prfsha256-modp2048"
        );
        assert_eq!(&ike.psk[..], b"a-test-pre-shared-key");
        assert_eq!(ike.local_id, "198.51.100.2");
        assert_eq!(ike.remote_id, "cpe.example.com");
        assert_eq!(ike.start_action, config::Action::Trap);
        assert_eq!(ike.dpd_action, config::Action::Clear);
        assert_eq!(ike.dpd_delay, Some(std::time::Duration::from_secs(30)));

        let b = &cfg.connections[1];
        assert_eq!(b.encapsulation, config::Encapsulation::Esp);
        assert_eq!(b.esp.algorithm.to_string(), "aes128-md5");
        assert_eq!(
            b.esp.pfs.map(|g| g.to_string()).as_deref(),
            Some("modp1024")
        );
        let ike = b.ike.as_ref().unwrap();
        assert_eq!(ike.proposals[0].to_string(), "aes128-md5-prfmd5-modp1024");
        assert_eq!(ike.start_action, config::Action::Start);
        assert_eq!(ike.dpd_delay, None);
        assert!(cfg.routes.is_empty());
    }

    #[test]
    fn routes_and_health_checks_render_into_the_device_syntax() {
        let m = model(&format!("{STATE}{ROUTES}"));
        let cfg = device(&m.render_vpn_gateway("vpn-hz").unwrap());
        let hc = cfg.connections[1].health_check.unwrap();
        assert_eq!(hc.source.to_string(), "192.168.4.1");
        assert_eq!(hc.destination.to_string(), "10.2.0.10");
        assert_eq!(hc.interval, std::time::Duration::from_secs(3));
        assert_eq!(hc.retries, 3);
        assert!(cfg.connections[0].health_check.is_none());
        assert_eq!(cfg.routes.len(), 2);
        let r = &cfg.routes[0];
        assert_eq!(
            (r.destination.to_string(), r.connection, r.weight, r.publish),
            ("10.1.1.0/24".into(), 0, 100, true)
        );
        assert_eq!(r.source, None);
        let r = &cfg.routes[1];
        assert_eq!(
            r.source.map(|s| s.to_string()).as_deref(),
            Some("192.168.4.0/25")
        );
        assert_eq!((r.connection, r.weight, r.publish), (1, 0, false));
    }

    #[test]
    fn exported_and_imported_cpe_configs_are_valid_device_configs() {
        let m = model(STATE);
        for (name, remote_id, proposal, local) in [
            (
                "onprem",
                "198.51.100.2",
                "aes256-sha256-prfsha256-modp2048",
                "10.1.1.0/24",
            ),
            (
                "branch",
                "198.51.100.2",
                "aes128-md5-prfmd5-modp1024",
                "10.2.0.0/16",
            ),
        ] {
            let cfg = device(&m.export(name, ExportFormat::Ipsecgw).unwrap());
            let c = &cfg.connections[0];
            assert_eq!(c.local_subnets[0].to_string(), local);
            assert_eq!(c.remote_subnets[0].to_string(), "192.168.4.0/24");
            assert_eq!(c.remote.ip().to_string(), "198.51.100.2");
            let ike = c.ike.as_ref().unwrap();
            assert_eq!(ike.proposals[0].to_string(), proposal);
            assert_eq!(ike.remote_id, remote_id);
            assert_eq!(ike.start_action, config::Action::Start);

            let json = m.export(name, ExportFormat::Alibaba).unwrap();
            let path = Path::new("/tmp/download.json");
            let cpe = import_alibaba(path, &json).unwrap();
            let imported = device(&cpe.to_ipsecgw(path, &CpeDevice::default()).unwrap());
            let i = &imported.connections[0];
            assert_eq!(i.local_subnets, c.local_subnets);
            assert_eq!(i.remote_subnets, c.remote_subnets);
            assert_eq!(i.esp.algorithm, c.esp.algorithm);
            assert_eq!(i.ike.as_ref().unwrap().proposals, ike.proposals);
            assert_eq!(i.ike.as_ref().unwrap().psk, ike.psk);
            assert_eq!(i.ike.as_ref().unwrap().local_id, ike.local_id);
        }
        assert_eq!(
            m.connections()[0].ike.local_id,
            None,
            "the customer gateway's identity is the CPE's local id"
        );
        let cfg = device(&m.export("onprem", ExportFormat::Ipsecgw).unwrap());
        assert_eq!(
            cfg.connections[0].ike.as_ref().unwrap().local_id,
            "cpe.example.com"
        );
    }

    #[test]
    fn the_state_file_is_written_private_and_atomically() {
        let dir = std::env::temp_dir().join(format!("ipsecgw-cloud-{}", std::process::id()));
        let path = dir.join("nested/cloud.toml");
        write_private(&path, "first").unwrap();
        write_private(&path, "second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file left: {leftovers:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_state_file_defaults_to_the_environment_then_var_lib() {
        let explicit = StateArg {
            state: Some("/x/y.toml".into()),
        };
        assert_eq!(explicit.path(), Path::new("/x/y.toml"));
        // The environment is the process's: only check the fallback when
        // it is not set.
        if std::env::var_os(STATE_ENV).is_none() {
            assert_eq!(StateArg { state: None }.path(), Path::new(DEFAULT_STATE));
        }
    }
}
