# ipsecgw in a container: the gateway runs as an unprivileged user, and the
# only privileges it has are CAP_NET_ADMIN (TUN device, routes, link
# settings) and CAP_NET_RAW (raw ESP socket). They come from file
# capabilities on the binary, so the container has to allow them:
#
#   docker build -t ipsecgw .
#   docker run --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
#       --device /dev/net/tun --sysctl net.ipv4.ip_forward=1 \
#       --sysctl net.ipv4.ip_unprivileged_port_start=0 \
#       -e IPSECGW_PSK -v "$PWD/gw.toml:/etc/ipsecgw/ipsecgw.toml:ro" ipsecgw
#
# Without NET_ADMIN or NET_RAW in the container's capability set the kernel
# refuses to run the binary at all ("operation not permitted"): file
# capabilities are all or nothing. `no-new-privileges` must stay off, as it
# switches file capabilities off. IKE binds UDP 500, which is why
# ip_unprivileged_port_start is lowered instead of granting
# CAP_NET_BIND_SERVICE (Docker 20.10 and later already default it to 0).
# docker/compose.yaml runs two sites with this image.
#
# The default path pulls public images and compiles inside the builder
# stage. It works with the classic builder and with BuildKit. Machines with
# no registry use the same file with local images and a binary built on the
# host (scripts/docker-e2e does this):
#
#   docker build --target runtime \
#       --build-arg BUILDER_IMAGE=LOCAL --build-arg RUNTIME_IMAGE=LOCAL \
#       --build-arg PREBUILT=ipsecgw -f Dockerfile CONTEXT_WITH_THE_BINARY
#
# LOCAL is a Debian 12 image. The binary must be built for Debian 12's glibc
# or an older one.

# Both are Debian 12 ("bookworm") so the binary finds the glibc it linked against.
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- builder: /out/ipsecgw ---------------------------------------------------
FROM ${BUILDER_IMAGE} AS builder
COPY . /src
# The path, relative to the build context, of a binary built elsewhere, or
# empty to compile here. The classic builder runs every stage up to the target
# whether or not it is used, so the switch lives inside this stage rather
# than in a stage of its own: with PREBUILT set, the builder image needs no
# Rust toolchain.
ARG PREBUILT=
RUN set -eu; \
    cd /src; \
    if [ -n "$PREBUILT" ]; then \
        install -D -m 0755 "$PREBUILT" /out/ipsecgw; \
    else \
        cargo build --release --locked -p ipsecgw; \
        install -D -m 0755 target/release/ipsecgw /out/ipsecgw; \
    fi; \
    /out/ipsecgw --version

# ---- runtime: the gateway, not root, with two capabilities -------------------
FROM ${RUNTIME_IMAGE} AS runtime
# setcap, for the step below. ip and ping are there for looking around inside
# the container, and so that the LAN host containers of docker/compose.yaml
# can use this image too. ps is there to check who the gateway runs as. apt-get
# runs only for what the base image lacks: the local Debian image of
# scripts/docker-e2e already has all of it, so that build needs no network.
# The user has a fixed uid/gid (10001), so that runAsNonRoot-style checks
# and file ownership on the host can name it. (One RUN, not several: each
# step of the classic builder costs a container commit.)
RUN set -eu; \
    missing=""; \
    command -v setcap >/dev/null 2>&1 || missing="$missing libcap2-bin"; \
    command -v ip >/dev/null 2>&1 || missing="$missing iproute2"; \
    command -v ping >/dev/null 2>&1 || missing="$missing iputils-ping"; \
    command -v ps >/dev/null 2>&1 || missing="$missing procps"; \
    if [ -n "$missing" ]; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --gid 10001 ipsecgw; \
    useradd --uid 10001 --gid 10001 --no-create-home --no-log-init \
        --home-dir /nonexistent --shell /usr/sbin/nologin ipsecgw; \
    install -d -m 0755 /etc/ipsecgw; \
    install -d -o 10001 -g 10001 -m 0750 /run/ipsecgw
COPY --from=builder /out/ipsecgw /usr/local/bin/ipsecgw
# Permitted and effective at exec, for the unprivileged user. Only a process
# executing this file gets them; a shell in the container does not.
RUN setcap cap_net_admin,cap_net_raw+ep /usr/local/bin/ipsecgw && \
    getcap /usr/local/bin/ipsecgw | grep -q 'cap_net_admin,cap_net_raw=ep'
LABEL org.opencontainers.image.title="ipsecgw" \
      org.opencontainers.image.description="Userspace IPsec site-to-site VPN gateway" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
USER 10001:10001
# The control socket (gateway.control_socket) goes in /run/ipsecgw, which this
# user owns; with a read-only root file system mount a tmpfs there, owned by
# 10001 (docker/compose.yaml does).
ENTRYPOINT ["/usr/local/bin/ipsecgw"]
CMD ["run", "--config", "/etc/ipsecgw/ipsecgw.toml"]
