//! YCSB's number generators, reproduced formula for formula.
//!
//! Every random draw comes from an RNG the caller passes in, so a run is deterministic for
//! a seed (YCSB draws from `ThreadLocalRandom`, so the streams differ from YCSB's, but the
//! distributions, constants and edge cases are the same). Counters are shared between
//! threads and take `&self`; the others belong to one thread and take `&mut self` where
//! they keep state.

pub mod counter;
pub mod discrete;
pub mod exponential;
pub mod hotspot;
pub mod latest;
pub mod uniform;
pub mod zipfian;

pub use counter::{AcknowledgedCounterGenerator, CounterGenerator, SequentialGenerator};
pub use discrete::DiscreteGenerator;
pub use exponential::ExponentialGenerator;
pub use hotspot::HotspotIntegerGenerator;
pub use latest::SkewedLatestGenerator;
pub use uniform::UniformLongGenerator;
pub use zipfian::{ScrambledZipfianGenerator, ZipfianGenerator};
