//! Where a node's diagnostics go. The library reports through the `log` facade: peer
//! connections closing and coming back, anti-entropy trees built, membership and ring
//! changes, hint deliveries (info); trouble that needs no answer from the caller, such as a
//! failed anti-entropy round or a refused peer (warn); a failed commit log (error). Nothing
//! is shown until a binary installs a logger: kvnode shows info and above, kvbench's
//! embedded clusters warnings and above (their nodes start and stop with every run), and
//! `RUST_LOG` (for example `RUST_LOG=info` or `RUST_LOG=cluster::net=warn`) overrides both.

use std::io::Write;

/// Installs a logger writing each message, alone on its line, to stderr, at `default` and
/// above unless `RUST_LOG` says otherwise. Does nothing when a logger is already installed.
pub fn init_stderr_logger(default: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(default);
    builder.parse_default_env();
    builder.format(|out, record| writeln!(out, "{}", record.args()));
    let _ = builder.try_init();
}
