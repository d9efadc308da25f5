#!/usr/bin/env python3
"""The orchestration behind scripts/bench (run that, not this: it installs the
tools, builds ipsecgw and removes the namespaces even if this is killed).

For each round, every candidate once (interleaved): build the topology

    hostL eth0 -- lan0 gwL wan0 -- wan0 gwR lan0 -- eth0 hostR
    10.1.1.10     10.1.1.1 198.51.100.1  198.51.100.2 192.168.4.1  192.168.4.10

in four fresh namespaces, start the candidate on gwL and gwR, measure (iperf3
from hostL to hostR, ping), stop it, remove the namespaces. Then the medians
across rounds and the ratios ipsecgw / each other candidate, as markdown on
stdout and in the bench section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ALL_TESTS = ["tcp1", "tcp4", "udp_big", "udp_small", "ping"]
TESTS = set(ALL_TESTS)  # the ones this run measures (--tests)


def ran(key: str, text: str) -> str:
    """A table cell: `text`, or "not run" for a test left out with --tests."""
    return text if key in TESTS else "not run"
ALL_CANDIDATES = ["plain", "ipsecgw", "ipsecgw-nooffload", "strongswan", "boringtun", "wireguard-go"]

HOST_L, GW_L_LAN, GW_L_WAN = "10.1.1.10", "10.1.1.1", "198.51.100.1"
GW_R_WAN, GW_R_LAN, HOST_R = "198.51.100.2", "192.168.4.1", "192.168.4.10"
SUBNET_L, SUBNET_R = "10.1.1.0/24", "192.168.4.0/24"
TUNNEL_MTU = 1400
UDP_BIG = 1372  # the largest UDP payload that fits a 1400-byte tunnel MTU
UDP_SMALL = 64
LOSS_LIMIT = 1.0  # percent
STEP = 1.5
REFINE = 2  # bisection steps after the first lossy step
GROWTH = 1.05  # a step that raises the received rate by less has saturated
UDP_STEP_MAX_SECONDS = 5

BEGIN = "<!-- bench:begin (written by scripts/bench; edits inside are overwritten) -->"
END = "<!-- bench:end -->"

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A candidate could not start or a measurement could not run."""


def run(cmd: list[str], timeout: float = 30, check: bool = True, env=None, input_text=None):
    try:
        p = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            env=env,
            input=input_text,
        )
    except subprocess.TimeoutExpired as e:
        raise Failed(f"`{' '.join(cmd)}` timed out after {timeout} s") from e
    except OSError as e:  # e.g. the program is not installed
        raise Failed(f"`{' '.join(cmd)}`: {e}") from e
    if check and p.returncode != 0:
        raise Failed(
            f"`{' '.join(cmd)}` failed ({p.returncode}): {(p.stderr or p.stdout).strip()[:400]}"
        )
    return p


def wait_for(what: str, limit: float, pred, proc: subprocess.Popen | None = None, log_path=None):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ""
            if log_path and Path(log_path).exists():
                tail = Path(log_path).read_text(errors="replace")[-600:]
            raise Failed(f"{what}: the process exited with {proc.returncode}; log tail:\n{tail}")
        try:
            if pred():
                return
        except Failed:
            pass
        time.sleep(0.1)
    raise Failed(f"{what}: not within {limit} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Topology:
    """Four namespaces, veths created inside them (nothing in the root ns)."""

    def __init__(self, prefix: str, work: Path):
        self.prefix = prefix
        self.work = work
        self.host_l, self.gw_l = f"{prefix}hostL", f"{prefix}gwL"
        self.gw_r, self.host_r = f"{prefix}gwR", f"{prefix}hostR"
        self.all = [self.host_l, self.gw_l, self.gw_r, self.host_r]
        self.procs: list[subprocess.Popen] = []

    def build(self) -> None:
        for ns in self.all:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            if Path("/proc/sys/net/ipv6").exists():
                self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1")
                self.sysctl(ns, "net.ipv6.conf.default.disable_ipv6=1")
        for a, ia, b, ib in [
            (self.host_l, "eth0", self.gw_l, "lan0"),
            (self.gw_l, "wan0", self.gw_r, "wan0"),
            (self.gw_r, "lan0", self.host_r, "eth0"),
        ]:
            run(["ip", "-n", a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", b])
        for ns, dev, addr in [
            (self.host_l, "eth0", "10.1.1.10/24"),
            (self.gw_l, "lan0", "10.1.1.1/24"),
            (self.gw_l, "wan0", "198.51.100.1/24"),
            (self.gw_r, "wan0", "198.51.100.2/24"),
            (self.gw_r, "lan0", "192.168.4.1/24"),
            (self.host_r, "eth0", "192.168.4.10/24"),
        ]:
            run(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", self.host_l, "route", "add", "default", "via", GW_L_LAN])
        run(["ip", "-n", self.host_r, "route", "add", "default", "via", GW_R_LAN])
        self.sysctl(self.gw_l, "net.ipv4.ip_forward=1")
        self.sysctl(self.gw_r, "net.ipv4.ip_forward=1")

    def sysctl(self, ns: str, setting: str) -> None:
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", setting])

    def exec(self, ns: str, cmd: list[str], timeout: float = 30, check: bool = True, env=None):
        return run(["ip", "netns", "exec", ns, *cmd], timeout=timeout, check=check, env=env)

    def spawn(self, ns: str, cmd: list[str], log_path: Path, env=None) -> subprocess.Popen:
        """Starts CMD in NS; `ip netns exec` execs it, so the pid is CMD's."""
        out = open(log_path, "ab")
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a terminal ^C reaches us, we stop it in order
        )
        out.close()
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p: subprocess.Popen, grace: float = 10) -> None:
        if p.poll() is not None:
            return
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass

    def teardown(self) -> None:
        for p in reversed(self.procs):
            self.stop(p)
        self.procs.clear()
        for ns in self.all:
            existing = run(["ip", "netns", "list"], check=False).stdout.split()
            if ns not in existing:
                continue
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:  # anything left in our namespace is ours
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", ns], check=False)


# ---------------------------------------------------------------- candidates


class Candidate:
    name = ""
    label = ""

    def __init__(self, args, topo: Topology, dir_: Path):
        self.args = args
        self.topo = topo
        self.dir = dir_
        self.gateways: list[subprocess.Popen] = []

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for p in self.gateways:
            Topology.stop(p)

    def gateway_pids(self) -> list[int]:
        return [p.pid for p in self.gateways]

    def describe(self) -> str:
        return self.label


class Plain(Candidate):
    name = "plain"
    label = "plain routing, no tunnel (MTU 1500)"

    def start(self):
        t = self.topo
        t.exec(t.gw_l, ["ip", "route", "add", SUBNET_R, "via", GW_R_WAN])
        t.exec(t.gw_r, ["ip", "route", "add", SUBNET_L, "via", GW_L_WAN])


class Ipsecgw(Candidate):
    name = "ipsecgw"
    # [tun] offload: auto (the default) uses TUN TSO/GRO and UDP GSO/GRO
    # where the kernel has them; "off" is the plain path, for comparison.
    offload = "auto"

    def describe(self):
        ver = run([self.args.ipsecgw, "--version"], check=False).stdout.strip().split()
        v = ver[-1] if ver else "?"
        mode = "?"
        try:
            mode = self.status("L").get("offload", {}).get("mode", "?")
        except Failed:
            pass
        return (f"ipsecgw {v} (IKEv2, AES-256-GCM, ESP in UDP, TUN MTU 1400, "
                f"offload = {self.offload}: {mode})")

    def config(self, side: str) -> str:
        left = side == "L"
        return f"""# Written by scripts/bench.
[gateway]
name = "bench{side}"
public_address = "{GW_L_WAN if left else GW_R_WAN}"
control_socket = "{self.dir}/ipsecgw-{side}.sock"

[tun]
name = "ipsgwb0"
wan_mtu = 1500
mtu = {TUNNEL_MTU}
offload = "{self.offload}"

[[ipsec_connection]]
name = "site"
remote_address = "{GW_R_WAN if left else GW_L_WAN}"
local_subnets = ["{SUBNET_L if left else SUBNET_R}"]
remote_subnets = ["{SUBNET_R if left else SUBNET_L}"]
encapsulation = "udp"

[ipsec_connection.ike]
version = "ikev2"
proposals = ["aes256gcm16-prfsha256-curve25519"]
psk_env = "IPSECGW_PSK"
start_action = "{'start' if left else 'none'}"
dpd_delay = 0

[ipsec_connection.ipsec]
encryption = "aes256gcm16"
esn = true
{self.args.ipsecgw_toml}
"""

    def status(self, side: str) -> dict:
        ns = self.topo.gw_l if side == "L" else self.topo.gw_r
        out = self.topo.exec(
            ns,
            [self.args.ipsecgw, "status", "--json", "--socket", f"{self.dir}/ipsecgw-{side}.sock"],
            timeout=10,
        )
        return json.loads(out.stdout)

    def established(self, side: str) -> bool:
        return any(
            sa.get("state") == "ESTABLISHED" and sa.get("children")
            for sa in self.status(side).get("ike_sas", [])
        )

    def start(self):
        env = dict(os.environ, IPSECGW_PSK=os.urandom(24).hex(), RUST_LOG="warn")
        # The responder first, so the initiator's first IKE_SA_INIT is answered.
        for side, ns in [("R", self.topo.gw_r), ("L", self.topo.gw_l)]:
            cfg = self.dir / f"ipsecgw-{side}.toml"
            cfg.write_text(self.config(side))
            run([self.args.ipsecgw, "check", "--config", str(cfg)], env=env)
            logp = self.dir / f"ipsecgw-{side}.log"
            p = self.topo.spawn(ns, [self.args.ipsecgw, "run", "--config", str(cfg)], logp, env=env)
            self.gateways.append(p)
            wait_for(f"ipsecgw {side} control socket", 20, lambda s=side: bool(self.status(s)), p, logp)
        for side, p in zip(["R", "L"], self.gateways):
            wait_for(
                f"ipsecgw {side}: an ESTABLISHED IKE SA with a CHILD SA",
                20,
                lambda s=side: self.established(s),
                p,
                self.dir / f"ipsecgw-{side}.log",
            )


class IpsecgwNoOffload(Ipsecgw):
    """The same daemon with `[tun] offload = "off"`: one TUN read or write
    per packet, one sendmmsg/recvmmsg entry per ESP packet."""

    name = "ipsecgw-nooffload"
    offload = "off"


STRONGSWAN_PLUGINS = (
    "random nonce openssl aes gcm sha2 sha1 md5 hmac kdf curve25519 pem pkcs1 x509 pubkey "
    "revocation constraints vici kernel-libipsec kernel-netlink socket-default updown"
)


class Strongswan(Candidate):
    """charon-systemd + kernel-libipsec, one per gateway namespace; the same
    settings as tests/src/strongswan.rs (the interop tests)."""

    name = "strongswan"

    def describe(self):
        v = deb_version("charon-systemd")
        return f"strongSwan {v} charon-systemd + kernel-libipsec (AES-256-GCM, ESP in UDP, TUN MTU 1400)"

    def sdir(self, side: str) -> Path:
        return self.dir / f"ss{side}"

    def strongswan_conf(self, side: str) -> str:
        d = self.sdir(side)
        return f"""# Written by scripts/bench (mirrors tests/src/strongswan.rs).
charon-systemd {{
    load_modular = no
    load = {STRONGSWAN_PLUGINS}
    port = 500
    port_nat_t = 4500
    install_routes = yes
    install_virtual_ip = no
    journal {{
        default = -1
    }}
    filelog {{
        charon {{
            path = {d}/charon.log
            append = no
            flush_line = yes
            time_format = %H:%M:%S
            ike_name = yes
            default = 1
        }}
    }}
    plugins {{
        vici {{
            socket = unix://{d}/charon.vici
        }}
        kernel-libipsec {{
            allow_peer_ts = no
        }}
    }}
}}
swanctl {{
    socket = unix://{d}/charon.vici
}}
"""

    def swanctl_conf(self, side: str, psk_hex: str) -> str:
        left = side == "L"
        local, remote = (GW_L_WAN, GW_R_WAN) if left else (GW_R_WAN, GW_L_WAN)
        lts, rts = (SUBNET_L, SUBNET_R) if left else (SUBNET_R, SUBNET_L)
        return f"""# Written by scripts/bench.
connections {{
    site {{
        version = 2
        local_addrs = {local}
        remote_addrs = {remote}
        proposals = aes256gcm16-prfsha256-curve25519
        encap = yes
        mobike = no
        local {{
            auth = psk
            id = "{local}"
        }}
        remote {{
            auth = psk
            id = "{remote}"
        }}
        children {{
            lan {{
                mode = tunnel
                local_ts = {lts}
                remote_ts = {rts}
                esp_proposals = aes256gcm16
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    ike-site {{
        id-local = "{local}"
        id-remote = "{remote}"
        secret = 0x{psk_hex}
    }}
}}
"""

    def swanctl(self, side: str, args: list[str], timeout: float = 25):
        d = self.sdir(side)
        env = dict(os.environ, STRONGSWAN_CONF=str(d / "strongswan.conf"), SWANCTL_DIR=str(d))
        return run(["swanctl", *args, "--uri", f"unix://{d}/charon.vici"], timeout=timeout, env=env)

    def start(self):
        psk_hex = os.urandom(24).hex().encode().hex()
        for side, ns in [("R", self.topo.gw_r), ("L", self.topo.gw_l)]:
            d = self.sdir(side)
            d.mkdir()
            (d / "strongswan.conf").write_text(self.strongswan_conf(side))
            (d / "swanctl.conf").write_text(self.swanctl_conf(side, psk_hex))
            env = dict(os.environ, STRONGSWAN_CONF=str(d / "strongswan.conf"))
            p = self.topo.spawn(ns, ["charon-systemd"], d / "charon.out", env=env)
            self.gateways.append(p)
            wait_for(
                f"charon {side} vici socket",
                20,
                lambda s=side: self.swanctl(s, ["--stats"], timeout=5).returncode == 0,
                p,
                d / "charon.log",
            )
            out = self.swanctl(side, ["--load-all", "--noprompt", "--file", str(d / "swanctl.conf")])
            if "successfully loaded 1 connections" not in out.stdout:
                raise Failed(f"swanctl --load-all ({side}): {out.stdout}")
        out = self.swanctl("L", ["--initiate", "--child", "lan", "--ike", "site", "--timeout", "20"])
        if "established with SPIs" not in out.stdout:
            raise Failed(f"swanctl --initiate: {out.stdout[-600:]}")


class Wireguard(Candidate):
    """A userspace WireGuard on each gateway, keyed with `wg setconf`. The UAPI
    sockets live in /var/run/wireguard/IFNAME.sock, shared by every namespace:
    the interface names carry our pid and differ between the two sides."""

    port = 51820
    ifprefix = ""

    def ifname(self, side: str) -> str:
        return f"{self.ifprefix}{self.args.tag}{side.lower()}"

    def command(self, ifname: str) -> list[str]:
        raise NotImplementedError

    def start(self):
        keys = {}
        for side in "LR":
            priv = run(["wg", "genkey"]).stdout.strip()
            pub = run(["wg", "pubkey"], input_text=priv + "\n").stdout.strip()
            keys[side] = (priv, pub)
        for side, ns in [("L", self.topo.gw_l), ("R", self.topo.gw_r)]:
            other = "R" if side == "L" else "L"
            ifname = self.ifname(side)
            sock = Path(f"/var/run/wireguard/{ifname}.sock")
            if sock.exists():
                sock.unlink()  # left by an earlier run of ours (the name has our pid)
            logp = self.dir / f"{self.name}-{side}.log"
            env = dict(os.environ, WG_PROCESS_FOREGROUND="1")
            p = self.topo.spawn(ns, self.command(ifname), logp, env=env)
            self.gateways.append(p)
            wait_for(f"{self.name} {side} UAPI socket", 20, sock.exists, p, logp)
            conf = self.dir / f"{self.name}-{side}.conf"
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(
                    f"[Interface]\nPrivateKey = {keys[side][0]}\nListenPort = {self.port}\n\n"
                    f"[Peer]\nPublicKey = {keys[other][1]}\n"
                    f"Endpoint = {GW_R_WAN if side == 'L' else GW_L_WAN}:{self.port}\n"
                    f"AllowedIPs = {SUBNET_R if side == 'L' else SUBNET_L}\n"
                )
            self.topo.exec(ns, ["wg", "setconf", ifname, str(conf)])
            self.topo.exec(ns, ["ip", "link", "set", ifname, "mtu", str(TUNNEL_MTU), "up"])
            self.topo.exec(ns, ["ip", "route", "add", SUBNET_R if side == "L" else SUBNET_L, "dev", ifname])

    def stop(self):
        super().stop()
        for side in "LR":
            Path(f"/var/run/wireguard/{self.ifname(side)}.sock").unlink(missing_ok=True)


class Boringtun(Wireguard):
    name = "boringtun"
    ifprefix = "bt"

    def describe(self):
        out = run([self.args.boringtun, "--version"], check=False).stdout.strip().split()
        v = out[-1] if out else "?"
        return f"boringtun-cli {v} (WireGuard, userspace, TUN MTU 1400)"

    def command(self, ifname):
        if not self.args.boringtun or not Path(self.args.boringtun).exists():
            raise Failed("boringtun-cli is not installed (cargo install boringtun-cli --locked)")
        return [self.args.boringtun, "--foreground", "--disable-drop-privileges", ifname]


class WireguardGo(Wireguard):
    name = "wireguard-go"
    ifprefix = "wg"

    def describe(self):
        v = deb_version("wireguard-go")
        return f"wireguard-go {v} (Debian; WireGuard, userspace, TUN MTU 1400)"

    def command(self, ifname):
        if not shutil.which("wireguard-go"):
            raise Failed("wireguard-go is not installed (apt-get install wireguard-go)")
        return ["wireguard-go", "-f", ifname]


def deb_version(package: str) -> str:
    """The upstream part of an installed Debian package's version."""
    try:
        out = run(["dpkg-query", "-W", "-f", "${Version}", package], check=False).stdout
    except (Failed, OSError):
        return "?"
    return re.sub(r"^\d+:", "", out.strip()).split("-")[0] or "?"


CLASSES = {c.name: c for c in [Plain, Ipsecgw, IpsecgwNoOffload, Strongswan, Boringtun, WireguardGo]}


# -------------------------------------------------------------- measurements


class Meter:
    def __init__(self, args, topo: Topology, cand: Candidate, dir_: Path):
        self.args = args
        self.topo = topo
        self.cand = cand
        self.dir = dir_
        self.n = 0

    def ping_ok(self) -> bool:
        return self.topo.exec(self.topo.host_l, ["ping", "-n", "-q", "-c", "1", "-W", "1", HOST_R], check=False).returncode == 0

    def wait_path(self) -> None:
        wait_for("a ping from hostL to hostR through the tunnel", 20, self.ping_ok)

    def iperf(self, client_args: list[str], seconds: float) -> dict:
        """One-off iperf3 server in hostR (-1), client in hostL, JSON back."""
        self.n += 1
        slog = self.dir / f"iperf3-server-{self.n}.log"
        server = self.topo.spawn(self.topo.host_r, ["iperf3", "-s", "-1", "-J", "-B", HOST_R], slog)

        def listening():
            out = self.topo.exec(self.topo.host_r, ["ss", "-Hltn", "sport = :5201"], check=False).stdout
            return "5201" in out

        try:
            wait_for("iperf3 server", 10, listening, server, slog)
            out = self.topo.exec(
                self.topo.host_l,
                ["iperf3", "-c", HOST_R, "-J", "-t", str(seconds), *client_args],
                timeout=seconds + 30,
                check=False,
            )
            try:
                data = json.loads(out.stdout)
            except json.JSONDecodeError as e:
                raise Failed(f"iperf3 {' '.join(client_args)}: no JSON: {out.stderr.strip()[:300]}") from e
            if data.get("error"):
                raise Failed(f"iperf3 {' '.join(client_args)}: {data['error']}")
            return data
        finally:
            Topology.stop(server, grace=3)
            self.topo.procs.remove(server)

    def tcp(self, streams: int, with_cpu: bool = False) -> dict:
        pids = self.cand.gateway_pids() if with_cpu else []
        before = sum(cpu_seconds(p) for p in pids)
        data = self.iperf(["-P", str(streams)], self.args.duration)
        after = sum(cpu_seconds(p) for p in pids)
        recv = data["end"]["sum_received"]
        res = {"bps": recv["bits_per_second"], "bytes": recv["bytes"]}
        if with_cpu and pids and recv["bytes"] > 0:
            res["cpu_s"] = after - before
            res["cpu_s_per_gb"] = (after - before) / (recv["bytes"] / 1e9)
        return res

    def udp_once(self, size: int, rate_bps: float) -> dict:
        secs = min(self.args.duration, UDP_STEP_MAX_SECONDS)
        data = self.iperf(
            # 2 MiB socket buffers (rmem_max is 4 MiB here): so that the iperf3
            # receiver, descheduled for a moment on a busy 2-core machine,
            # does not drop what the tunnel delivered.
            ["-u", "-l", str(size), "-b", str(int(rate_bps)), "-w", "2M", "--get-server-output"],
            secs
        )
        srv = (data.get("server_output_json") or {}).get("end", {}).get("sum", {})
        packets = srv.get("packets", 0)
        lost = max(0, srv.get("lost_packets", 0))
        seconds = srv.get("seconds") or secs
        received = max(0, packets - lost)
        loss = 100.0 * lost / packets if packets else 100.0
        return {
            "offered_bps": rate_bps,
            "pps": received / seconds,
            "bps": received * size * 8 / seconds,
            "loss": loss,
        }

    def udp_step(self, size: int, start_bps: float, cap_bps: float) -> dict:
        """Steps the offered rate up by 1.5x until the server-side received
        rate stops growing or loss passes 1 %; the best step under 1 % loss."""
        steps = []
        best = None
        rate = start_bps
        prev = None
        while rate <= cap_bps:
            r = self.udp_once(size, rate)
            steps.append(r)
            log(
                f"    UDP {size} B offered {rate / 1e6:8.1f} Mbit/s: received "
                f"{r['bps'] / 1e6:8.1f} Mbit/s {r['pps'] / 1e3:7.1f} kpps, loss {r['loss']:.2f} %"
            )
            ok = r["loss"] < LOSS_LIMIT
            if ok and (best is None or r["pps"] > best["pps"]):
                best = r
            if not ok or (prev is not None and r["pps"] < prev["pps"] * GROWTH):
                break
            prev = r
            rate *= STEP
        # The 1.5x steps are coarse: when a step failed on loss after one
        # that passed, try between them (geometric midpoints, twice), so
        # that the figure is within ~11 % of the highest clean rate.
        if steps and steps[-1]["loss"] >= LOSS_LIMIT and best is not None:
            lo, hi = best["offered_bps"], steps[-1]["offered_bps"]
            for _ in range(REFINE):
                mid = (lo * hi) ** 0.5
                r = self.udp_once(size, mid)
                steps.append(r)
                log(
                    f"    UDP {size} B offered {mid / 1e6:8.1f} Mbit/s (refining): received "
                    f"{r['pps'] / 1e3:7.1f} kpps, loss {r['loss']:.2f} %"
                )
                if r["loss"] < LOSS_LIMIT:
                    if r["pps"] > best["pps"]:
                        best = r
                    lo = mid
                else:
                    hi = mid
        # Loss already at the first step: step down (at most 4 times).
        down = start_bps
        for _ in range(4):
            if best is not None:
                break
            down /= STEP
            r = self.udp_once(size, down)
            steps.append(r)
            log(f"    UDP {size} B offered {down / 1e6:8.1f} Mbit/s: received {r['pps'] / 1e3:.1f} kpps, loss {r['loss']:.2f} %")
            if r["loss"] < LOSS_LIMIT:
                best = r
        if best is None:
            best = max(steps, key=lambda s: s["pps"])
            best = dict(best, over_limit=True)
        return dict(best, steps=len(steps))

    def ping(self) -> dict:
        out = self.topo.exec(
            self.topo.host_l,
            ["ping", "-n", "-q", "-c", "100", "-i", "0.01", "-W", "1", HOST_R],
            timeout=60,
            check=False,
        ).stdout
        m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", out)
        if not m:
            raise Failed(f"ping: no RTT summary: {out.strip()[-200:]}")
        return {"avg_ms": float(m.group(2))}


def measure(args, topo, cand, dir_, warm: dict) -> dict:
    """All metrics for one candidate in one round; a failed metric is None."""
    m = Meter(args, topo, cand, dir_)
    m.wait_path()
    res: dict = {}

    def attempt(key, fn):
        try:
            res[key] = fn()
        except Failed as e:
            log(f"  {cand.name}: {key} failed: {e}")
            res[key] = None

    if "tcp1" in args.tests:
        attempt("tcp1", lambda: m.tcp(1, with_cpu=cand.name != "plain"))
    if "tcp4" in args.tests:
        attempt("tcp4", lambda: m.tcp(4))
    for key, size, base, cap in [
        ("udp_big", UDP_BIG, 50e6, 40e9),
        ("udp_small", UDP_SMALL, 20e3 * UDP_SMALL * 8, 5e6 * UDP_SMALL * 8),
    ]:
        if key not in args.tests:
            continue
        # Later rounds start two steps below the previous round's best.
        start = max(base, warm.get((cand.name, key), 0) / STEP**2)
        attempt(key, lambda s=size, st=start, c=cap: m.udp_step(s, st, c))
        if res.get(key) and not res[key].get("over_limit"):
            warm[(cand.name, key)] = res[key]["offered_bps"]
    if "ping" in args.tests:
        attempt("ping", m.ping)
    return res


# ------------------------------------------------------------------ report


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(rounds: list[dict], names: list[str]) -> dict:
    """name -> metric -> median (None if it failed in every round)."""
    out = {}
    for n in names:
        rs = [r[n] for r in rounds if r.get(n) and not r[n].get("error")]
        get = lambda k, f: median([f(r[k]) if r.get(k) else None for r in rs])  # noqa: E731
        out[n] = {
            "ok_rounds": len(rs),
            "errors": [r[n]["error"] for r in rounds if r.get(n) and r[n].get("error")],
            "tcp1": get("tcp1", lambda v: v["bps"]),
            "tcp4": get("tcp4", lambda v: v["bps"]),
            "cpu": get("tcp1", lambda v: v.get("cpu_s_per_gb")),
            "udp_big": get("udp_big", lambda v: v["bps"]),
            "udp_big_loss": get("udp_big", lambda v: v["loss"]),
            "udp_small": get("udp_small", lambda v: v["pps"]),
            "udp_small_loss": get("udp_small", lambda v: v["loss"]),
            "ping": get("ping", lambda v: v["avg_ms"]),
        }
    return out


def fmt_bps(v):
    if v is None:
        return "failed"
    return f"{v / 1e9:.2f} Gbit/s" if v >= 1e9 else f"{v / 1e6:.0f} Mbit/s"


def fmt_udp(v, loss, unit):
    if v is None:
        return "failed"
    s = fmt_bps(v) if unit == "bps" else f"{v / 1e3:.0f} kpps"
    return f"{s} ({loss:.2f} % loss)"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def render(summary: dict, names: list[str], labels: dict, meta: dict) -> str:
    lines = []
    lines.append(f"Command: `{meta['command']}`  ")
    lines.append(f"Date: {meta['date']}  ")
    lines.append(f"Machine: {meta['cpu']}, {meta['cores']} cores, kernel `{meta['kernel']}`; a shared "
                 f"machine (other engineers' builds and daemons run on the same 2 cores)  ")
    lines.append(f"ipsecgw: built from {meta['git']}  ")
    before = f"{meta['load_before']} before scripts/bench built anything, " if meta.get("load_before") else ""
    lines.append(f"Load average (1/5/15 min): {before}{meta['load_start']} at the start of the "
                 f"measurements, {meta['load_end']} at the end (the benchmark itself keeps both cores busy)  ")
    lines.append(f"Rounds: {meta['rounds']}, {meta['duration']} s per TCP test, "
                 f"{meta['udp_step']} s per UDP rate step; medians across rounds")
    lines.append("")
    lines.append("| candidate | TCP 1 stream | TCP 4 streams | UDP 1372 B received | UDP 64 B received | ping avg | gateway CPU-s per GB |")
    lines.append("|---|---|---|---|---|---|---|")
    for n in names:
        s = summary[n]
        label = labels.get(n, n)
        if s["ok_rounds"] == 0:
            err = (s["errors"][0] if s["errors"] else "failed").splitlines()[0][:160]
            lines.append(f"| {label} | failed: {err.replace('|', '/')} | | | | | |")
            continue
        if s["ok_rounds"] < meta["rounds"]:
            label += f" ({s['ok_rounds']} of {meta['rounds']} rounds)"
        cpu = "–" if n == "plain" else ("failed" if s["cpu"] is None else f"{s['cpu']:.1f}")
        ping = "failed" if s["ping"] is None else f"{s['ping']:.3f} ms"
        lines.append(
            f"| {label} | {ran('tcp1', fmt_bps(s['tcp1']))} | {ran('tcp4', fmt_bps(s['tcp4']))} | "
            f"{ran('udp_big', fmt_udp(s['udp_big'], s['udp_big_loss'], 'bps'))} | "
            f"{ran('udp_small', fmt_udp(s['udp_small'], s['udp_small_loss'], 'pps'))} | "
            f"{ran('ping', ping)} | {ran('tcp1', cpu)} |"
        )
    others = [n for n in names if n != "ipsecgw"]
    if "ipsecgw" in names and others:
        me = summary["ipsecgw"]
        plain_ping = summary.get("plain", {}).get("ping")
        lines.append("")
        lines.append("Ratios ipsecgw / candidate (throughput: higher is better for ipsecgw; "
                     "ping, added ping and CPU: lower is better):")
        lines.append("")
        lines.append("| ipsecgw / | TCP 1 stream | TCP 4 streams | UDP 1372 B | UDP 64 B pps | ping avg | ping added over plain | CPU-s per GB |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for n in others:
            o = summary[n]
            added = "–"
            if plain_ping is not None and n != "plain" and me["ping"] is not None and o["ping"] is not None:
                added = fmt_ratio(me["ping"] - plain_ping, o["ping"] - plain_ping)
            lines.append(
                f"| {n} | {fmt_ratio(me['tcp1'], o['tcp1'])} | {fmt_ratio(me['tcp4'], o['tcp4'])} | "
                f"{fmt_ratio(me['udp_big'], o['udp_big'])} | {fmt_ratio(me['udp_small'], o['udp_small'])} | "
                f"{fmt_ratio(me['ping'], o['ping'])} | {added} | "
                f"{'–' if n == 'plain' else fmt_ratio(me['cpu'], o['cpu'])} |"
            )
    return "\n".join(lines) + "\n"


def render_rounds(rounds: list[dict], names: list[str]) -> str:
    lines = ["<details><summary>Every round</summary>", "",
             "| round | candidate | TCP 1 | TCP 4 | UDP 1372 B | UDP 64 B | ping | CPU-s/GB |",
             "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds, 1):
        for n in names:
            x = r.get(n) or {}
            if x.get("error"):
                lines.append(f"| {i} | {n} | failed: {x['error'].splitlines()[0][:100].replace('|', '/')} | | | | | |")
                continue
            def g(k, f):
                return ran(k, f(x[k]) if x.get(k) else "failed")
            ping = g("ping", lambda v: f"{v['avg_ms']:.3f} ms")
            cpu = g("tcp1", lambda v: f"{v['cpu_s_per_gb']:.1f}" if "cpu_s_per_gb" in v else "–")
            lines.append(
                f"| {i} | {n} | {g('tcp1', lambda v: fmt_bps(v['bps']))} | {g('tcp4', lambda v: fmt_bps(v['bps']))} | "
                f"{g('udp_big', lambda v: fmt_udp(v['bps'], v['loss'], 'bps'))} | "
                f"{g('udp_small', lambda v: fmt_udp(v['pps'], v['loss'], 'pps'))} | {ping} | {cpu} |"
            )
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def write_section(path: Path, body: str) -> None:
    section = f"{BEGIN}\n{body}{END}\n"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + section + tail.lstrip("\n"))
            return
        path.write_text(text.rstrip("\n") + "\n\n## Latest results\n\n" + section)
    else:
        path.write_text("# Benchmarks\n\nWritten by `scripts/bench`.\n\n## Latest results\n\n" + section)


def loadavg() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_describe() -> str:
    if os.environ.get("IPSECGW_BIN"):
        return f"IPSECGW_BIN={os.environ['IPSECGW_BIN']}"
    root = Path(__file__).resolve().parent.parent.parent
    try:
        head = run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        dirty = run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "crates"],
                    check=False).stdout.strip()
    except (Failed, OSError):
        return "an unknown revision"
    if not head:
        return "an unknown revision"
    return f"commit {head}" + (" with uncommitted changes in crates/" if dirty else "")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="ipsecgw side by side with plain routing, strongSwan (kernel-libipsec), "
        "boringtun and wireguard-go, in network namespaces.",
    )
    ap.add_argument("--duration", type=int, default=10, help="seconds per iperf3 test (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, medians reported (default 3)")
    ap.add_argument("--candidates", default=",".join(ALL_CANDIDATES),
                    help=f"comma-separated subset of {','.join(ALL_CANDIDATES)}")
    ap.add_argument("--tests", default=",".join(ALL_TESTS),
                    help=f"comma-separated subset of {','.join(ALL_TESTS)} (default: all)")
    ap.add_argument("--ipsecgw-toml", default="",
                    help="TOML appended to both ipsecgw configs, e.g. '[dataplane]\\nthreads = 1' (to compare settings)")
    ap.add_argument("--out", default="BENCHMARKS.md",
                    help="markdown file whose bench section is replaced (default BENCHMARKS.md; - for none)")
    # Set by the scripts/bench wrapper.
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default=str(os.getpid()), help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--ipsecgw", help=argparse.SUPPRESS)
    ap.add_argument("--boringtun", default="", help=argparse.SUPPRESS)
    ap.add_argument("--command", default="scripts/bench", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)  # every round's raw figures, JSON
    args = ap.parse_args()
    if not (args.prefix and args.work and args.ipsecgw):
        ap.error("run scripts/bench, not bench.py")
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    for n in names:
        if n not in CLASSES:
            ap.error(f"unknown candidate {n!r}: choose from {','.join(ALL_CANDIDATES)}")
    global TESTS
    args.ipsecgw_toml = args.ipsecgw_toml.replace("\\n", "\n")
    args.tests = [t.strip() for t in args.tests.split(",") if t.strip()]
    TESTS = set(args.tests)
    for t in args.tests:
        if t not in ALL_TESTS:
            ap.error(f"unknown test {t!r}: choose from {','.join(ALL_TESTS)}")
    if args.duration <= 0 or args.rounds < 1:
        ap.error("--duration must be > 0 and --rounds >= 1")

    work = Path(args.work)
    meta = {
        "command": args.command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": os.uname().release,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_start": loadavg(),
        "git": git_describe(),
        "load_before": os.environ.get("IPSGWB_LOAD_BEFORE", ""),
        "rounds": args.rounds,
        "duration": args.duration,
        "udp_step": min(args.duration, UDP_STEP_MAX_SECONDS),
    }
    log(f"load average at the start: {meta['load_start']}")
    labels: dict = {}
    rounds: list[dict] = []
    warm: dict = {}
    for rnd in range(1, args.rounds + 1):
        results: dict = {}
        for n in names:
            tag = f"r{rnd}-{n}"
            dir_ = work / tag
            dir_.mkdir(parents=True)
            topo = Topology(f"{args.prefix}{n[:4]}{rnd}-", dir_)
            cand = CLASSES[n](args, topo, dir_)
            log(f"round {rnd}/{args.rounds}: {n}")
            t0 = time.monotonic()
            try:
                topo.build()
                cand.start()
                labels.setdefault(n, cand.describe())
                results[n] = measure(args, topo, cand, dir_, warm)
            except Failed as e:
                log(f"  {n} FAILED: {e}")
                results[n] = {"error": str(e).replace(f"{work}/", "")}
                labels.setdefault(n, cand.label or n)
            finally:
                try:
                    cand.stop()
                finally:
                    topo.teardown()
            r = results[n]
            if not r.get("error"):
                parts = []
                if r.get("tcp1"):
                    parts.append(f"tcp1 {fmt_bps(r['tcp1']['bps'])}")
                if r.get("tcp4"):
                    parts.append(f"tcp4 {fmt_bps(r['tcp4']['bps'])}")
                if r.get("udp_big"):
                    parts.append(f"udp1372 {fmt_bps(r['udp_big']['bps'])}")
                if r.get("udp_small"):
                    parts.append(f"udp64 {r['udp_small']['pps'] / 1e3:.0f} kpps")
                if r.get("ping"):
                    parts.append(f"ping {r['ping']['avg_ms']:.3f} ms")
                if r.get("tcp1") and "cpu_s_per_gb" in r["tcp1"]:
                    parts.append(f"cpu {r['tcp1']['cpu_s_per_gb']:.1f} s/GB")
                log(f"  {n}: " + ", ".join(parts) + f" ({time.monotonic() - t0:.0f} s)")
        rounds.append(results)
        (work / "results.json").write_text(json.dumps(rounds, indent=1, default=str))
    meta["load_end"] = loadavg()
    summary = summarize(rounds, names)
    body = render(summary, names, labels, meta)
    body += "\n" + render_rounds(rounds, names)
    print(body)
    if args.results:
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps({"meta": meta, "rounds": rounds}, indent=1, default=str))
        log(f"every round's raw figures: {args.results}")
    if args.out != "-":
        write_section(Path(args.out), body)
        log(f"wrote the results into {args.out}")
    failed = [n for n in names if summary[n]["ok_rounds"] == 0]
    if failed:
        log(f"failed in every round: {', '.join(failed)}")
    return 0


def on_sigterm(_signum, _frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    # SIGTERM unwinds like ^C, so the finally blocks stop the daemons.
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
