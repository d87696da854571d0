//! The RESP2 client the driver measures with: pipelined connections, a reply parser with
//! limits, and YCSB's operations as Redis commands.
//!
//! - [`resp`]: command encoding and zero-copy reply parsing.
//! - [`connection`]: a connection with N requests in flight, replies matched in order.
//! - [`ops`]: YCSB read/update/insert/scan/delete as GET/SET/DEL/KV.SCAN, records as one
//!   value, replies as YCSB return codes; [`TargetKind`] tells plain Redis from kvnode.

pub mod connection;
pub mod ops;
pub mod resp;

pub use connection::{command_blocking, connect_blocking, Connection, Target};
pub use ops::TargetKind;
pub use resp::{parse_reply, ProtocolError, Reply};
