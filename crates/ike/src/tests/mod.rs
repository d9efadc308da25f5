//! State-machine scenarios: two endpoints wired together in memory, with a
//! hand-advanced clock and a network that can lose, duplicate and reorder.

mod handshake;
mod harness;
mod rekey;
