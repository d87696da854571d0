//! The connection and introspection commands clients send around the data: INFO, COMMAND,
//! CONFIG GET, CLIENT, SELECT, HELLO, AUTH; and `LINK.STATS` (the link emulator's delay
//! samples). Replies follow Redis closely enough for
//! redis-cli, redis-benchmark and redis-py, which send several of them on connect.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::connection::Session;
use super::ServerContext;
use crate::protocol::command::{ClientRequest, CommandQuery, Credentials};
use crate::protocol::{resp, Request};
use crate::{Error, Result};

/// The Redis version reported to clients; some pick features by it, and 7.0 is what this
/// node's command subset resembles.
pub const REDIS_VERSION: &str = "7.0.0";

/// Executes a connection or introspection command.
pub fn execute(
    context: &ServerContext,
    session: &mut Session,
    request: Request,
    output: &mut Vec<u8>,
) -> Result<()> {
    match request {
        Request::Info { sections } => {
            resp::write_bulk(output, info_text(context, &sections).as_bytes())
        }
        Request::Command(query) => write_command(output, query),
        Request::ConfigGet { patterns } => write_config(output, &patterns),
        Request::Client(client) => write_client(session, client, output),
        Request::Select => resp::write_ok(output),
        Request::LinkStats { reset } => {
            let emulator = context.links.emulator();
            if reset {
                emulator.stats().reset();
                resp::write_ok(output);
            } else {
                let lines = emulator.stats().lines();
                resp::write_array_header(output, lines.len());
                for line in &lines {
                    resp::write_bulk(output, line.as_bytes());
                }
            }
        }
        Request::Auth(credentials) => {
            authenticate(context, session, &credentials)?;
            resp::write_ok(output);
        }
        Request::Hello {
            credentials,
            client_name,
            ..
        } => {
            if let Some(credentials) = credentials {
                authenticate(context, session, &credentials)?;
            }
            if !session.authenticated {
                return Err(Error::Command(
                    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
                ));
            }
            if let Some(name) = client_name {
                session.name = Some(name);
            }
            write_hello(session, output);
        }
        other => {
            return Err(Error::Command(format!(
                "ERR '{}' is not handled here",
                other.name()
            )));
        }
    }
    Ok(())
}

fn authenticate(
    context: &ServerContext,
    session: &mut Session,
    credentials: &Credentials,
) -> Result<()> {
    let Some(password) = context.config.requirepass.as_deref() else {
        return Err(Error::Command(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into(),
        ));
    };
    let user_ok = credentials
        .username
        .as_deref()
        .is_none_or(|user| user == b"default");
    if user_ok && credentials.password == password.as_bytes() {
        session.authenticated = true;
        Ok(())
    } else {
        Err(Error::Command(
            "WRONGPASS invalid username-password pair or user is disabled.".into(),
        ))
    }
}

/// `INFO`: Redis's `# Section` / `field:value` text. Sections asked for by name (any case)
/// are shown; none, `all`, `default` or `everything` shows them all.
pub fn info_text(context: &ServerContext, sections: &[String]) -> String {
    let wanted = |name: &str| {
        sections.is_empty()
            || sections.iter().any(|section| {
                let section = section.to_ascii_lowercase();
                section == name || matches!(section.as_str(), "all" | "default" | "everything")
            })
    };
    let config = &context.config;
    let counters = &context.counters;
    let mut text = String::new();
    // Writing to a String cannot fail.
    if wanted("server") {
        let uptime = context.started.elapsed().as_secs();
        let _ = write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nkvnode_version:{}\r\nnode_id:{}\r\ndatacenter:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            config.node_id,
            config.datacenter,
            std::process::id(),
            config.client_address.port(),
            uptime / 86_400,
        );
    }
    if wanted("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n",
            counters.connected_clients.load(Ordering::Relaxed),
            config.client_connections_max,
        );
    }
    if wanted("stats") {
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            counters.connections_received.load(Ordering::Relaxed),
            counters.commands_processed.load(Ordering::Relaxed),
        );
    }
    if wanted("replication") {
        let _ = write!(
            text,
            "# Replication\r\nrole:master\r\nreplicas_per_key:{}\r\ndefault_consistency:{}\r\n\r\n",
            config.effective_replicas(),
            config.default_consistency.describe(),
        );
    }
    if wanted("engine") || wanted("keyspace") {
        let stats = context.backend.engine_stats();
        let _ = write!(
            text,
            "# Engine\r\ntables:{}\r\ntable_bytes:{}\r\nmemtable_bytes:{}\r\nblock_cache_bytes:{}\r\nrow_cache_bytes:{}\r\nrow_cache_hits:{}\r\nrow_cache_misses:{}\r\nflushes:{}\r\ncompactions:{}\r\nwrite_stalls:{}\r\nwal_bytes:{}\r\nlast_sequence:{}\r\ncorrupt_sets_replaced:{}\r\nlog_records_recovered:{}\r\nlog_torn_tail_bytes_dropped:{}\r\nlog_stale_bytes_dropped:{}\r\nlog_segments_salvaged:{}\r\n\r\n",
            stats.tables,
            stats.table_bytes,
            stats.memtable_bytes,
            stats.block_cache_bytes,
            stats.row_cache_bytes,
            stats.row_cache_hits,
            stats.row_cache_misses,
            stats.flushes,
            stats.compactions,
            stats.write_stalls,
            stats.wal_bytes,
            stats.last_seq,
            context.backend.corrupt_sets_replaced(),
            stats.log_records_recovered,
            stats.log_torn_tail_bytes_dropped,
            stats.log_stale_bytes_dropped,
            stats.log_segments_salvaged,
        );
    }
    if wanted("repair") {
        let fields = context.backend.repair_info();
        if !fields.is_empty() {
            text.push_str("# Repair\r\n");
            for (name, value) in fields {
                let _ = write!(text, "{name}:{value}\r\n");
            }
            text.push_str("\r\n");
        }
    }
    if wanted("antientropy") {
        let fields = context.backend.antientropy_info();
        if !fields.is_empty() {
            text.push_str("# AntiEntropy\r\n");
            for (name, value) in fields {
                let _ = write!(text, "{name}:{value}\r\n");
            }
            text.push_str("\r\n");
        }
    }
    if wanted("membership") {
        let fields = context.backend.membership_info();
        if !fields.is_empty() {
            text.push_str("# Membership\r\n");
            for (name, value) in fields {
                let _ = write!(text, "{name}:{value}\r\n");
            }
            text.push_str("\r\n");
        }
    }
    if wanted("scaling") {
        let fields = context.backend.scaling_info();
        if !fields.is_empty() {
            text.push_str("# Scaling\r\n");
            for (name, value) in fields {
                let _ = write!(text, "{name}:{value}\r\n");
            }
            text.push_str("\r\n");
        }
    }
    text
}

/// Minimal `COMMAND` replies: clients only use them for hints, and an empty table makes
/// redis-cli fall back to plain input.
fn write_command(output: &mut Vec<u8>, query: CommandQuery) {
    match query {
        CommandQuery::Count => resp::write_integer(output, 0),
        CommandQuery::All | CommandQuery::Docs { .. } | CommandQuery::List => {
            resp::write_array_header(output, 0)
        }
        CommandQuery::Info { names } => {
            resp::write_array_header(output, names.len());
            for _ in names {
                resp::write_null_array(output);
            }
        }
    }
}

/// `CONFIG GET`: the two settings redis-benchmark asks for, answered as a server without
/// Redis-style persistence; other patterns match nothing.
fn write_config(output: &mut Vec<u8>, patterns: &[String]) {
    const SETTINGS: [(&str, &str); 2] = [("save", ""), ("appendonly", "no")];
    let matches: Vec<_> = SETTINGS
        .iter()
        .filter(|(name, _)| {
            patterns
                .iter()
                .any(|pattern| pattern == "*" || pattern.eq_ignore_ascii_case(name))
        })
        .collect();
    resp::write_array_header(output, matches.len() * 2);
    for (name, value) in matches {
        resp::write_bulk(output, name.as_bytes());
        resp::write_bulk(output, value.as_bytes());
    }
}

fn write_client(session: &mut Session, client: ClientRequest, output: &mut Vec<u8>) {
    match client {
        ClientRequest::SetName { name } => {
            session.name = (!name.is_empty()).then_some(name);
            resp::write_ok(output);
        }
        ClientRequest::GetName => match &session.name {
            Some(name) => resp::write_bulk(output, name),
            None => resp::write_null_bulk(output),
        },
        ClientRequest::SetInfo { .. } => resp::write_ok(output),
        ClientRequest::Id => resp::write_integer(output, session.client_id as i64),
    }
}

/// `HELLO` in RESP2: the field/value pairs as a flat array, as Redis sends them.
fn write_hello(session: &Session, output: &mut Vec<u8>) {
    resp::write_array_header(output, 14);
    for (name, value) in [("server", "redis"), ("version", REDIS_VERSION)] {
        resp::write_bulk(output, name.as_bytes());
        resp::write_bulk(output, value.as_bytes());
    }
    resp::write_bulk(output, b"proto");
    resp::write_integer(output, 2);
    resp::write_bulk(output, b"id");
    resp::write_integer(output, session.client_id as i64);
    for (name, value) in [("mode", "standalone"), ("role", "master")] {
        resp::write_bulk(output, name.as_bytes());
        resp::write_bulk(output, value.as_bytes());
    }
    resp::write_bulk(output, b"modules");
    resp::write_array_header(output, 0);
}
