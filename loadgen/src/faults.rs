//! Failure schedules: at given times of a run, kill, stop or restart a node, partition two
//! datacenters (or nodes), heal, change a link's delay or loss, add or remove a node.
//!
//! A schedule is a list of entries `TIME ACTION [ARGS]`, separated by `;` or newlines
//! (`#` starts a comment), from `--schedule "..."`, `--schedule-file FILE`, or the
//! workload properties `schedule=...` / `schedule.file=FILE`:
//!
//! ```text
//! 1s   kill n2                       SIGKILL (embedded cluster: a kvnode process)
//! 3s   restart n2                    start it again on its data directory
//! 4s   stop n3                       a clean stop (SIGTERM)
//! 5s   partition dc1 dc2             LINK.PARTITION; nodes: partition n1 n4 (or node n1 n4)
//! 6s   heal                          LINK.HEAL (every pair), or heal dc1 dc2
//! 7s   link dc1 dc2 delay=50ms loss=0.01    LINK.SET (replaces the pair's whole spec)
//! 8s   link reset                    LINK.RESET: every link back to the configuration
//! 9s   remove n3                     CLUSTER.LEAVE on n3 (CLUSTER.REMOVE n3 elsewhere if down)
//! 9s   add n7                        start spare node n7 and CLUSTER.JOIN it (embedded cluster)
//! 20s  cleanup                       CLUSTER.CLEANUP on every node in turn (cleanup compact: COMPACT)
//! ```
//!
//! TIME is seconds from the run's start (`10`, `10s`, `1.5s`, `500ms`, `2m`). A file whose
//! name ends in `.toml` holds `[[event]]` tables with `at = "10s"` and `do = "kill n2"`.
//! Every error names the entry (`schedule entry 2 "3x restart n2": ...`).
//!
//! [`run`] executes a schedule against a [`FaultTarget`] while the driver runs, and
//! writes `events.csv` (`time_s,event,target,result,end_s`).
//!
//! `add NODE` on the embedded cluster starts a spare node, configured but not started
//! with the others (`spare_nodes` in `--local-config`, or one per node the schedule adds:
//! `add n4` on three nodes), then sends `CLUSTER.JOIN` to a running node, which streams
//! the node's ranges and moves the ring; `end_s` in `events.csv` is when the join is done.

pub mod command_line;
pub mod embedded;
pub mod exec;
pub mod node;
pub mod run;
#[cfg(test)]
mod tests;

pub use command_line::{schedule_from_command_line, write_availability_csv};
pub use exec::{write_events_csv, EventRecord, FaultTarget, RemoteNodes, ScheduleRunner};
pub use run::{run_phase_with_schedule, AfterRun};

use crate::{Error, Result};
use cluster::net::DelayDistribution;
use std::path::Path;
use std::time::Duration;

/// The workload property holding an inline schedule.
pub const SCHEDULE_PROPERTY: &str = "schedule";
/// The workload property naming a schedule file.
pub const SCHEDULE_FILE_PROPERTY: &str = "schedule.file";

/// Which side of a link event: datacenters (`dc1 dc2`) or nodes (`n1 n4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub nodes: bool,
    pub a: String,
    pub b: String,
}

impl Pair {
    /// `dc1 dc2` or `node n1 n4`, as the LINK.* commands take it.
    fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if self.nodes {
            words.push("NODE".to_string());
        }
        words.push(self.a.clone());
        words.push(self.b.clone());
        words
    }
}

/// What an entry does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// SIGKILL the node (a crash).
    Kill(String),
    /// Stop the node cleanly.
    Stop(String),
    /// Start the node again on its data directory (after a kill or stop).
    Restart(String),
    /// Cut every message between the two sides.
    Partition(Pair),
    /// Undo partitions: between a pair, or all.
    Heal(Option<Pair>),
    /// Set a link's delay (link-emulator syntax, ms) and loss probability.
    Link {
        pair: Pair,
        delay: Option<String>,
        loss: Option<f64>,
    },
    /// Every link back to the configured settings.
    LinkReset,
    /// A new node joins the cluster.
    Add(String),
    /// A node leaves the cluster.
    Remove(String),
    /// `CLUSTER.CLEANUP [COMPACT]` on every node in turn: each drops the keys it no longer
    /// replicates (after an `add`).
    Cleanup { compact: bool },
}

impl Action {
    /// The `event` column of `events.csv`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Kill(_) => "kill",
            Action::Stop(_) => "stop",
            Action::Restart(_) => "restart",
            Action::Partition(_) => "partition",
            Action::Heal(_) => "heal",
            Action::Link { .. } => "link",
            Action::LinkReset => "link-reset",
            Action::Add(_) => "add",
            Action::Remove(_) => "remove",
            Action::Cleanup { .. } => "cleanup",
        }
    }

    /// The `target` column of `events.csv`: the node, or the pair (`dc1-dc2`).
    pub fn target(&self) -> String {
        match self {
            Action::Kill(node)
            | Action::Stop(node)
            | Action::Restart(node)
            | Action::Add(node)
            | Action::Remove(node) => node.clone(),
            Action::Partition(pair) | Action::Link { pair, .. } | Action::Heal(Some(pair)) => {
                format!("{}-{}", pair.a, pair.b)
            }
            Action::Heal(None) | Action::LinkReset | Action::Cleanup { .. } => "all".to_string(),
        }
    }

    /// The admin command (words) a link event sends to a node; `None` for node events.
    pub fn link_command(&self) -> Option<Vec<String>> {
        let mut words = match self {
            Action::Partition(pair) => {
                let mut words = vec!["LINK.PARTITION".to_string()];
                words.extend(pair.words());
                words
            }
            Action::Heal(pair) => {
                let mut words = vec!["LINK.HEAL".to_string()];
                words.extend(pair.iter().flat_map(Pair::words));
                words
            }
            Action::Link { pair, delay, loss } => {
                let mut words = vec!["LINK.SET".to_string()];
                words.extend(pair.words());
                words.push("DELAY".to_string());
                words.push(delay.clone().unwrap_or_else(|| "0".to_string()));
                if let Some(loss) = loss {
                    words.push("LOSS".to_string());
                    words.push(loss.to_string());
                }
                words
            }
            Action::LinkReset => vec!["LINK.RESET".to_string()],
            _ => return None,
        };
        words.shrink_to_fit();
        Some(words)
    }

    /// The node a node event is about.
    pub fn node(&self) -> Option<&str> {
        match self {
            Action::Kill(node)
            | Action::Stop(node)
            | Action::Restart(node)
            | Action::Add(node)
            | Action::Remove(node) => Some(node),
            _ => None,
        }
    }
}

/// One entry: when, what, and its text as written (for messages and `events.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultEvent {
    pub at: Duration,
    pub action: Action,
    pub text: String,
}

/// A parsed schedule, its events in time order (entries at the same time keep their order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    pub events: Vec<FaultEvent>,
}

impl Schedule {
    /// Parses entries separated by `;` or newlines; `#` comments and blank entries are
    /// skipped.
    pub fn parse(text: &str) -> Result<Schedule> {
        let mut events = Vec::new();
        let entries = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or(""))
            .flat_map(|line| line.split(';'))
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let event = parse_entry(entry).map_err(|detail| Error::InvalidOption {
                field: format!("schedule entry {} {entry:?}", index + 1),
                detail,
            })?;
            events.push(event);
        }
        events.sort_by_key(|event| event.at);
        Ok(Schedule { events })
    }

    /// Reads a schedule file: `.toml` with `[[event]]` tables (`at`, `do`), anything else
    /// as entries one per line (or `;`-separated).
    pub fn from_file(path: &Path) -> Result<Schedule> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading schedule file {}", path.display()),
            source,
        })?;
        let in_file = |error: Error| match error {
            Error::InvalidOption { field, detail } => Error::InvalidOption {
                field: format!("{}: {field}", path.display()),
                detail,
            },
            other => other,
        };
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            return Schedule::from_toml(&text).map_err(in_file);
        }
        Schedule::parse(&text).map_err(in_file)
    }

    /// `[[event]]` tables with `at = "10s"` (or a number of seconds) and `do = "kill n2"`.
    pub fn from_toml(text: &str) -> Result<Schedule> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            event: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            at: toml::Value,
            #[serde(rename = "do")]
            action: String,
        }
        let file: File = toml::from_str(text).map_err(|error| Error::InvalidOption {
            field: "schedule".to_string(),
            detail: error.message().to_string(),
        })?;
        let lines: Vec<String> = file
            .event
            .iter()
            .map(|entry| {
                let at = match &entry.at {
                    toml::Value::String(text) => text.clone(),
                    toml::Value::Integer(seconds) => seconds.to_string(),
                    toml::Value::Float(seconds) => seconds.to_string(),
                    other => other.to_string(),
                };
                format!("{at} {}", entry.action.replace([';', '\n'], " "))
            })
            .collect();
        Schedule::parse(&lines.join("\n"))
    }

    /// Whether any event kills, stops or restarts a node (these need a launcher).
    pub fn has_node_events(&self) -> bool {
        self.events
            .iter()
            .any(|event| event.action.node().is_some())
    }

    /// Whether the schedule is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Parses a time: seconds (`10`, `1.5`), or with a unit `ms`, `s` or `m`.
pub fn parse_time(text: &str) -> std::result::Result<Duration, String> {
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("bad time {text:?}: expected seconds such as 10, 1.5s, 500ms or 2m")
    })?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("bad time {text:?}: must be a non-negative number"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn parse_entry(entry: &str) -> std::result::Result<FaultEvent, String> {
    let mut words: Vec<&str> = entry.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|word| word.eq_ignore_ascii_case("at"))
    {
        words.remove(0);
    }
    let Some((time, rest)) = words.split_first() else {
        return Err("empty entry".to_string());
    };
    let at = parse_time(time)?;
    let Some((verb, args)) = rest.split_first() else {
        return Err(format!(
            "no action after the time {time:?}: expected kill, stop, restart, partition, \
             heal, link, add, remove or cleanup"
        ));
    };
    let action = parse_action(&verb.to_ascii_lowercase(), args)?;
    Ok(FaultEvent {
        at,
        action,
        text: entry.to_string(),
    })
}

fn parse_action(verb: &str, args: &[&str]) -> std::result::Result<Action, String> {
    let one_node = |args: &[&str]| match args {
        [node] => Ok(node.to_string()),
        _ => Err(format!(
            "`{verb}` takes one node name (e.g. `{verb} n2`), got {}",
            describe(args)
        )),
    };
    match verb {
        "kill" => Ok(Action::Kill(one_node(args)?)),
        "stop" => Ok(Action::Stop(one_node(args)?)),
        "restart" | "start" => Ok(Action::Restart(one_node(args)?)),
        "add" | "join" => Ok(Action::Add(one_node(args)?)),
        "remove" | "leave" => Ok(Action::Remove(one_node(args)?)),
        "partition" => {
            let (pair, rest) = parse_pair(verb, args)?;
            expect_end(verb, rest)?;
            Ok(Action::Partition(pair))
        }
        "heal" if args.is_empty() => Ok(Action::Heal(None)),
        "heal" => {
            let (pair, rest) = parse_pair(verb, args)?;
            expect_end(verb, rest)?;
            Ok(Action::Heal(Some(pair)))
        }
        "link" if args.len() == 1 && args[0].eq_ignore_ascii_case("reset") => Ok(Action::LinkReset),
        "link" => parse_link(args),
        "cleanup" => match args {
            [] => Ok(Action::Cleanup { compact: false }),
            [word] if word.eq_ignore_ascii_case("compact") => Ok(Action::Cleanup { compact: true }),
            _ => Err(format!(
                "`cleanup` takes nothing or `compact`, got {}",
                describe(args)
            )),
        },
        _ => Err(format!(
            "unknown action {verb:?}: expected kill, stop, restart, partition, heal, link, add, \
             remove or cleanup"
        )),
    }
}

fn describe(args: &[&str]) -> String {
    if args.is_empty() {
        "nothing".to_string()
    } else {
        format!("{:?}", args.join(" "))
    }
}

/// `[node|dc] a b`: nodes when the keyword says so or both names look like `n<digits>`.
fn parse_pair<'a>(
    verb: &str,
    args: &'a [&'a str],
) -> std::result::Result<(Pair, &'a [&'a str]), String> {
    let (explicit, args) = match args.first().map(|word| word.to_ascii_lowercase()) {
        Some(word) if word == "node" || word == "nodes" => (Some(true), &args[1..]),
        Some(word) if word == "dc" || word == "dcs" => (Some(false), &args[1..]),
        _ => (None, args),
    };
    let [a, b, rest @ ..] = args else {
        return Err(format!(
            "`{verb}` needs two sides, datacenters (`{verb} dc1 dc2`) or nodes \
             (`{verb} n1 n4`), got {}",
            describe(args)
        ));
    };
    if a.contains('=') || b.contains('=') {
        return Err(format!("`{verb}` needs two sides before any option"));
    }
    if a.eq_ignore_ascii_case(b) {
        return Err(format!(
            "both sides are {a:?}: `{verb}` needs two different sides"
        ));
    }
    let looks_like_node = |name: &str| {
        name.len() > 1 && name.starts_with('n') && name[1..].bytes().all(|b| b.is_ascii_digit())
    };
    let nodes = explicit.unwrap_or_else(|| looks_like_node(a) && looks_like_node(b));
    let pair = Pair {
        nodes,
        a: a.to_string(),
        b: b.to_string(),
    };
    Ok((pair, rest))
}

fn expect_end(verb: &str, rest: &[&str]) -> std::result::Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "unexpected {} after `{verb}`'s two sides",
            describe(rest)
        ))
    }
}

/// `link a b [delay=D] [loss=P]`, at least one of them.
fn parse_link(args: &[&str]) -> std::result::Result<Action, String> {
    let (pair, options) = parse_pair("link", args)?;
    let (mut delay, mut loss) = (None, None);
    for option in options {
        let Some((name, value)) = option.split_once('=') else {
            return Err(format!(
                "unexpected {option:?}: `link` options are delay=D and loss=P"
            ));
        };
        match name.to_ascii_lowercase().as_str() {
            "delay" => {
                let value = value.strip_suffix("ms").unwrap_or(value);
                value.parse::<DelayDistribution>().map_err(|error| {
                    format!("delay={value:?}: {error} (milliseconds: 50ms, 50, 40+exp(5))")
                })?;
                if delay.replace(value.to_string()).is_some() {
                    return Err("delay given twice".to_string());
                }
            }
            "loss" => {
                let probability = match value.strip_suffix('%') {
                    Some(percent) => percent.parse::<f64>().map(|p| p / 100.0),
                    None => value.parse::<f64>(),
                }
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    format!("loss={value:?}: expected a probability from 0 to 1 (0.01) or 1%")
                })?;
                if loss.replace(probability).is_some() {
                    return Err("loss given twice".to_string());
                }
            }
            _ => {
                return Err(format!(
                    "unknown link option {name:?}: expected delay=D or loss=P"
                ))
            }
        }
    }
    if delay.is_none() && loss.is_none() {
        return Err("`link` needs delay=D and/or loss=P (or `link reset`)".to_string());
    }
    Ok(Action::Link { pair, delay, loss })
}
