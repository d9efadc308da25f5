//! Traffic tools the end-to-end tests run inside network namespaces
//! (`ip netns exec NS nettool ...`):
//!
//! - `tcp-sink --listen ADDR:PORT`: accepts one connection, reads to EOF,
//!   prints `bytes=N sha256=HEX`.
//! - `tcp-source --connect ADDR:PORT --bytes N --seed S`: sends N bytes of
//!   the deterministic stream for seed S, prints `bytes=N sha256=HEX`.
//! - `udp-replay --pcap FILE --to ADDR:PORT --count N`: sends again,
//!   byte for byte, the payloads of the first N ESP-in-UDP datagrams to
//!   ADDR:PORT found in the capture; prints `sent=N`.
//! - `esp-replay --pcap FILE --to ADDR --count N`: the same for raw ESP
//!   (IP protocol 50) through a raw socket.
//! - `udp-sink --listen ADDR:PORT --count N`: receives UDP datagrams until
//!   N arrived or none came for 3 s; prints `datagrams=N bad=B` (bad: not
//!   byte for byte what `udp-source` sends under that index).
//! - `udp-source --connect ADDR:PORT --sizes A,B,.. --each N`: sends N
//!   datagrams of each size in turn, in bursts of 32, as fast as it can.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use ipsecgw_tests::pcap::Pcap;
use ipsecgw_tests::stream::Stream;
use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// IANA protocol number of ESP (RFC 4303).
const IPPROTO_ESP: i32 = 50;

#[derive(Parser, Debug)]
#[command(about = "Traffic tools for the ipsecgw end-to-end tests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Accept one TCP connection, read to EOF, print `bytes=N sha256=HEX`.
    TcpSink {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Send N deterministic bytes over TCP, print `bytes=N sha256=HEX`.
    TcpSource {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        bytes: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep retrying the connection this long (the sink may start late).
        #[arg(long, default_value_t = 20)]
        connect_timeout_secs: u64,
    },
    /// Re-send the first N captured ESP-in-UDP payloads to ADDR:PORT.
    UdpReplay {
        #[arg(long)]
        pcap: PathBuf,
        #[arg(long)]
        to: SocketAddrV4,
        #[arg(long)]
        count: usize,
    },
    /// Receive UDP datagrams, check each, print `datagrams=N bad=B`.
    UdpSink {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        count: usize,
    },
    /// Send N checkable datagrams of each size.
    UdpSource {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        #[arg(long)]
        each: usize,
    },
    /// Re-send the first N captured raw ESP packets to ADDR.
    EspReplay {
        #[arg(long)]
        pcap: PathBuf,
        #[arg(long)]
        to: Ipv4Addr,
        #[arg(long)]
        count: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::TcpSink { listen } => tcp_sink(listen),
        Command::TcpSource {
            connect,
            bytes,
            seed,
            connect_timeout_secs,
        } => tcp_source(connect, bytes, seed, connect_timeout_secs),
        Command::UdpReplay { pcap, to, count } => udp_replay(&pcap, to, count),
        Command::EspReplay { pcap, to, count } => esp_replay(&pcap, to, count),
        Command::UdpSink { listen, count } => udp_sink(listen, count),
        Command::UdpSource {
            connect,
            sizes,
            each,
        } => udp_source(connect, &sizes, each),
    }
}

/// Datagram `index` of `len` bytes (at least 4): the index, then bytes
/// that depend on both.
fn udp_datagram(index: u32, len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len.max(4))
        .map(|k| {
            (k as u32)
                .wrapping_mul(31)
                .wrapping_add(index.wrapping_mul(7)) as u8
        })
        .collect();
    d[..4].copy_from_slice(&index.to_be_bytes());
    d
}

fn udp_sink(listen: SocketAddr, count: usize) -> Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = sock.set_recv_buffer_size(8 << 20);
    sock.bind(&listen.into())
        .with_context(|| format!("binding {listen}"))?;
    let sock: UdpSocket = sock.into();
    sock.set_read_timeout(Some(Duration::from_secs(3)))?;
    eprintln!("listening on {listen}");
    let (mut got, mut bad) = (0usize, 0usize);
    let mut buf = vec![0u8; 65_536];
    while got < count {
        let Ok(n) = sock.recv(&mut buf) else { break };
        got += 1;
        let index = buf
            .get(..4)
            .map_or(u32::MAX, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if n < 4 || buf[..n] != udp_datagram(index, n)[..] {
            bad += 1;
        }
    }
    println!("datagrams={got} bad={bad}");
    Ok(())
}

fn udp_source(connect: SocketAddr, sizes: &[usize], each: usize) -> Result<()> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).context("binding a UDP socket")?;
    sock.connect(connect)
        .with_context(|| format!("connecting to {connect}"))?;
    let mut index = 0u32;
    for &len in sizes {
        for k in 0..each {
            sock.send(&udp_datagram(index, len))
                .with_context(|| format!("sending datagram {index}"))?;
            index += 1;
            if k % 32 == 31 {
                // Bursts, not a flood: the sink keeps up.
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    println!("sent={index}");
    Ok(())
}

fn summary(bytes: u64, hasher: Sha256) -> String {
    format!("bytes={bytes} sha256={}", hex::encode(hasher.finalize()))
}

fn tcp_sink(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    eprintln!("listening on {listen}");
    let (mut conn, peer) = listener.accept().context("accepting")?;
    eprintln!("connection from {peer}");
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = conn.read(&mut buf).context("reading")?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    println!("{}", summary(total, hasher));
    Ok(())
}

fn tcp_source(connect: SocketAddr, bytes: u64, seed: u64, timeout_secs: u64) -> Result<()> {
    let mut conn = None;
    let mut last_err = None;
    // Retry once a second: the sink may not be listening yet.
    for _ in 0..timeout_secs.max(1) {
        match TcpStream::connect_timeout(&connect, Duration::from_secs(1)) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => {
                last_err = Some(e);
                thread::sleep(Duration::from_secs(1));
            }
        }
    }
    let Some(mut conn) = conn else {
        bail!("could not connect to {connect} within {timeout_secs} s: {last_err:?}");
    };
    let mut stream = Stream::new(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).context("chunk size")?;
        stream.fill(&mut buf[..n]);
        conn.write_all(&buf[..n]).context("sending")?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    conn.shutdown(std::net::Shutdown::Write)
        .context("closing the sending side")?;
    // Wait for the sink to close its side, so everything was delivered.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)
        .context("waiting for the sink to close")?;
    println!("{}", summary(bytes, hasher));
    Ok(())
}

fn udp_replay(pcap: &Path, to: SocketAddrV4, count: usize) -> Result<()> {
    let capture = Pcap::read(pcap)?;
    let payloads = capture.esp_in_udp_payloads(to);
    if payloads.len() < count {
        bail!(
            "{} holds only {} ESP-in-UDP datagrams to {to}, {count} requested",
            pcap.display(),
            payloads.len()
        );
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).context("binding a UDP socket")?;
    for payload in &payloads[..count] {
        socket
            .send_to(payload, to)
            .with_context(|| format!("sending to {to}"))?;
    }
    println!("sent={count}");
    Ok(())
}

fn esp_replay(pcap: &Path, to: Ipv4Addr, count: usize) -> Result<()> {
    let capture = Pcap::read(pcap)?;
    let payloads = capture.esp_payloads(to);
    if payloads.len() < count {
        bail!(
            "{} holds only {} ESP packets to {to}, {count} requested",
            pcap.display(),
            payloads.len()
        );
    }
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .context("opening a raw ESP socket (needs CAP_NET_RAW)")?;
    let dest = SockAddr::from(SocketAddrV4::new(to, 0));
    for payload in &payloads[..count] {
        socket
            .send_to(payload, &dest)
            .with_context(|| format!("sending ESP to {to}"))?;
    }
    println!("sent={count}");
    Ok(())
}
