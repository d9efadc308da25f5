# Shared bash for scripts/test and scripts/demo. Source it; do not run it.
# shellcheck shell=bash

# The workspace root (scripts/lib/..).
IPSGW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# require_root WHY: exits with a message unless running as root.
require_root() {
    if [[ "$(id -u)" -ne 0 ]]; then
        die "must run as root: $1 (try: sudo -E $0)"
    fi
}

# ensure_system_packages: installs, with apt-get, the Debian packages whose
# commands are missing. Nothing is installed when everything is present.
ensure_system_packages() {
    local -a missing=()
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
    command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
    command -v iperf3 >/dev/null 2>&1 || missing+=(iperf3)
    command -v nft >/dev/null 2>&1 || missing+=(nftables)
    command -v ps >/dev/null 2>&1 || missing+=(procps)
    command -v sysctl >/dev/null 2>&1 || missing+=(procps)
    [[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
    { command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1; } || missing+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "system packages: all present"
        return 0
    fi
    # De-duplicate (procps may be listed twice).
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${missing[*]} and no apt-get to install them: install them by hand"
    [[ "$(id -u)" -eq 0 ]] || die "missing ${missing[*]}: run as root so they can be installed"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ensure_cargo: makes rustup's cargo (with rustfmt and clippy) available.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ]]; then
        # shellcheck disable=SC1091
        . "${CARGO_HOME:-$HOME/.cargo}/env"
    fi
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found: install Rust with rustup (https://rustup.rs), then re-run"
}

# The target directory cargo uses.
target_dir() {
    local dir="${CARGO_TARGET_DIR:-$IPSGW_ROOT/target}"
    [[ "$dir" = /* ]] || dir="$IPSGW_ROOT/$dir"
    printf '%s\n' "$dir"
}

# hex_key N: N random bytes from /dev/urandom as lowercase hex.
hex_key() {
    od -An -v -tx1 -N "$1" /dev/urandom | tr -d ' \n'
}

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails
# after SECONDS.
wait_until() {
    local limit=$(($1 * 10)) i=0
    shift
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        ((i < limit)) || return 1
        sleep 0.1
    done
}

# The kernel-libipsec (userspace ESP) plugin of strongSwan, in
# libcharon-extra-plugins on Debian 12.
STRONGSWAN_LIBIPSEC_PLUGIN=/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so

# ensure_strongswan: installs, with apt-get, the strongSwan packages the
# interop tests run (charon-systemd, one per namespace, driven by swanctl over
# a per-instance vici socket; see tests/src/strongswan.rs) when charon-systemd,
# swanctl or the kernel-libipsec plugin is missing. Starts no daemon: the
# package scripts only start charon through systemd, which is not PID 1 here,
# and policy-rc.d forbids starting services during the install anyway.
ensure_strongswan() {
    if command -v charon-systemd >/dev/null 2>&1 &&
        command -v swanctl >/dev/null 2>&1 &&
        [[ -f "$STRONGSWAN_LIBIPSEC_PLUGIN" ]]; then
        log "strongSwan: charon-systemd, swanctl and kernel-libipsec present"
        return 0
    fi
    local -a pkgs=(
        strongswan-swanctl charon-systemd strongswan-charon
        libcharon-extra-plugins libstrongswan-standard-plugins
        libstrongswan-extra-plugins
    )
    command -v apt-get >/dev/null 2>&1 ||
        die "strongSwan missing and no apt-get to install it: install ${pkgs[*]} by hand"
    [[ "$(id -u)" -eq 0 ]] || die "strongSwan missing: run as root so it can be installed"
    log "installing strongSwan: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep invoke-rc.d from starting a system-wide charon (or any service)
    # while the packages install; restore whatever policy was there before.
    local policy=/usr/sbin/policy-rc.d saved=""
    if [[ -e "$policy" ]]; then
        saved="$(mktemp)"
        cp -p "$policy" "$saved"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    local rc=0
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } || rc=$?
    if [[ -n "$saved" ]]; then
        mv -f "$saved" "$policy"
    else
        rm -f "$policy"
    fi
    [[ $rc -eq 0 ]] || die "apt-get install ${pkgs[*]} failed ($rc)"
    command -v charon-systemd >/dev/null 2>&1 || die "charon-systemd still missing after installing ${pkgs[*]}"
    command -v swanctl >/dev/null 2>&1 || die "swanctl still missing after installing ${pkgs[*]}"
    [[ -f "$STRONGSWAN_LIBIPSEC_PLUGIN" ]] ||
        die "$STRONGSWAN_LIBIPSEC_PLUGIN still missing after installing ${pkgs[*]}"
}

# ensure_commands CMD=PACKAGE...: installs, with apt-get, the Debian package
# of each command that is missing; nothing when all are present.
ensure_commands() {
    local -a missing=()
    local pair
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${missing[*]} and no apt-get to install them: install them by hand"
    [[ "$(id -u)" -eq 0 ]] || die "missing ${missing[*]}: run as root so they can be installed"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 ||
            die "${pair%%=*} still missing after installing ${pair#*=}"
    done
}

# ensure_docker: a Docker engine that answers, and a Compose tool: the
# `docker compose` plugin when it is there, else the standalone
# docker-compose (Debian's, installed when missing). Sets DOCKER_COMPOSE to
# the command, an array. Pulls nothing: images come from the caller.
ensure_docker() {
    ensure_commands docker=docker.io
    docker info >/dev/null 2>&1 ||
        die "the Docker engine does not answer (docker info failed): start dockerd, then re-run"
    # shellcheck disable=SC2034 # read by the scripts that source this file
    if docker compose version >/dev/null 2>&1; then
        DOCKER_COMPOSE=(docker compose)
    else
        ensure_commands docker-compose=docker-compose
        DOCKER_COMPOSE=(docker-compose)
    fi
}
