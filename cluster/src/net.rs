//! The network under every peer message: the link emulator's model and the clock.
//!
//! The emulator decides, for each message, whether it is delivered and after how long. It is a
//! pure model: [`links::LinkEmulator::verdict`] takes the two endpoints and a random number
//! generator and returns a [`links::Verdict`]; the async transport that applies verdicts to
//! real sockets comes later and stays out of this module, so the same model drives a seeded,
//! deterministic in-process simulation.
//!
//! - [`delay`]: one-way delay distributions ([`DelayDistribution`]), their TOML form, and the
//!   compact text syntax used by admin commands and CLI flags (grammar in [`delay::syntax`]).
//! - [`presets`]: named production latency fits (the PBS paper's LinkedIn and Yammer fits).
//! - [`links`]: per-link specs (delay, loss, partitioned), the lookup table with its
//!   precedence rules, partitions, the run-time changeable [`LinkEmulator`] and the node's
//!   `[links]` configuration section ([`LinkConfig`]).
//! - [`clock`]: the [`Clock`] trait with the system clock and a hand-advanced one.
//!
//! Client-to-node links are emulated the same way: a client is an [`Endpoint`] whose node name
//! is the client's (for example `client:loadgen-1`) and whose datacenter is where it runs.

pub mod clock;
pub mod delay;
pub mod links;
pub mod presets;
pub mod transport;

pub use clock::{Clock, ManualClock, MonotonicTime, SystemClock};
pub use delay::{DelayDistribution, MixtureComponent};
pub use links::{
    DropReason, Endpoint, KindDelays, LinkChange, LinkConfig, LinkEmulator, LinkOverride, LinkPair,
    LinkScope, LinkSpec, LinkTable, MessageKind, PairKind, PartitionGroup, PartitionId, Verdict,
};
