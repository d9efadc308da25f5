//! Everything that touches the operating system: the TUN device, the WAN
//! sockets (batched with recvmmsg/sendmmsg), poll, and kernel routes over
//! netlink. The only place in the workspace allowed `unsafe`, each block
//! with its `// SAFETY:` reasoning.

pub mod netlink;
pub mod poll;
pub mod socket;
pub mod tun;
