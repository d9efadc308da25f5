//! Unit and property tests; the oracles are deliberately naive linear scans.

mod flow;
mod route;
mod selector;
mod spd;
mod strategies;
