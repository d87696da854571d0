//! `cluster`: the Dynamo-style node (`kvnode`) built on [`engine`].
//!
//! Not built yet: the ring, coordinator, RESP server, peer transport and link emulator
//! arrive with issue 3. The crate exists so the workspace has its final shape.

pub use engine;
