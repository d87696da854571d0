//! The one-way delays a run measured, for the WARS model: `LINK.STATS` of every node
//! (`cluster::net::links::stats`), merged, written to `measured_delays.csv`, and read back
//! as empirical distributions (`kvbench predict --from-run DIR`, and the report's
//! prediction beside a measured t-visibility curve).
//!
//! Per message kind (W write request, A write ack, R read request, S read response) and
//! scope (`intra`: both ends in one datacenter, `inter`: not), two measures:
//!
//! - `transit`: from the sending node's transport (after the emulator's verdict) to the
//!   receiving node's decode of the frame: the emulated delay plus the sender's outbound
//!   queue and timer, the loopback socket and the receiver's read. Not included: the
//!   coordinator's work before it sends, the replica's handler queue and store access,
//!   the coordinator's handling of a reply. Measured only when the nodes share a process
//!   (the embedded cluster in process; kvbench's kvnode processes record none).
//! - `applied`: the delay the emulator drew, alone.
//!
//! The model uses `transit` where there is any, else `applied`, else what the scope's other
//! kinds took (see [`MeasuredDelays::replica_delays`]).

use super::{Delay, ReplicaDelays, WarsModel};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file a run's measured delays go to.
pub const MEASURED_DELAYS_CSV: &str = "measured_delays.csv";
/// Most samples kept per kind, scope and measure once the nodes' samples are merged.
pub const MERGED_SAMPLES_MAX: usize = 16_384;

/// The WARS kinds in model order (W, A, R, S), as `LINK.STATS` names them.
pub const KINDS: [&str; 4] = [
    "write_request",
    "write_ack",
    "read_request",
    "read_response",
];

/// (kind, scope, measure), e.g. `("write_ack", "intra", "transit")`.
pub type Key = (String, String, String);

/// Measured delays of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasuredDelays {
    /// Delay samples, ms.
    pub samples: BTreeMap<Key, Vec<f64>>,
    /// Messages seen (over every node; the samples are a uniform subset).
    pub counts: BTreeMap<Key, u64>,
}

impl MeasuredDelays {
    /// Asks every node for `LINK.STATS` and merges the answers: each node contributes
    /// samples in proportion to the messages it saw. Nodes that do not answer are skipped;
    /// an error only when none answers.
    pub fn pull(addresses: &[SocketAddr]) -> Result<MeasuredDelays> {
        let words = ["LINK.STATS".to_string()];
        let mut per_node: Vec<BTreeMap<Key, (u64, Vec<f64>)>> = Vec::new();
        let mut last_error = None;
        for address in addresses {
            match crate::verify::command_text(*address, &words, Duration::from_secs(10)) {
                Ok(Ok(text)) => per_node.push(parse_stats(&text)?),
                Ok(Err(text)) => last_error = Some(format!("{address}: {text}")),
                Err(text) => last_error = Some(text),
            }
        }
        if per_node.is_empty() {
            return Err(Error::Connection {
                target: "LINK.STATS".to_string(),
                detail: last_error.unwrap_or_else(|| "no node to ask".to_string()),
            });
        }
        Ok(merge(&per_node))
    }

    /// `LINK.STATS RESET` on every node that answers (before the measured phase).
    pub fn reset(addresses: &[SocketAddr]) {
        let words = ["LINK.STATS".to_string(), "RESET".to_string()];
        for address in addresses {
            let _ = crate::verify::command_text(*address, &words, Duration::from_secs(5));
        }
    }

    /// Whether nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.samples.values().all(Vec::is_empty)
    }

    /// Writes `measured_delays.csv` (`kind,scope,measure,messages,delay_ms`, one row per
    /// sample) in `directory`.
    pub fn write_csv(&self, directory: &Path) -> Result<PathBuf> {
        let path = directory.join(MEASURED_DELAYS_CSV);
        crate::report::csv_files::write_csv_file(&path, |out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(["kind", "scope", "measure", "messages", "delay_ms"])?;
            for (key, samples) in &self.samples {
                let messages = self.counts.get(key).copied().unwrap_or(0).to_string();
                for ms in samples {
                    writer.write_record([
                        key.0.as_str(),
                        key.1.as_str(),
                        key.2.as_str(),
                        messages.as_str(),
                        &format!("{ms:.4}"),
                    ])?;
                }
            }
            writer.flush()?;
            Ok(())
        })?;
        Ok(path)
    }

    /// Reads `measured_delays.csv` from a run directory (or the file itself).
    pub fn read(path: &Path) -> Result<MeasuredDelays> {
        let file = if path.is_dir() {
            path.join(MEASURED_DELAYS_CSV)
        } else {
            path.to_path_buf()
        };
        let bad = |detail: String| Error::InvalidOption {
            field: file.display().to_string(),
            detail,
        };
        let mut reader = csv::Reader::from_path(&file).map_err(|error| {
            bad(format!(
                "cannot read the measured delays ({error}); a run on the embedded cluster \
                 writes them"
            ))
        })?;
        let mut delays = MeasuredDelays::default();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|error| bad(error.to_string()))?;
            let field = |index: usize| record.get(index).unwrap_or("").trim().to_string();
            let key = (field(0), field(1), field(2));
            let messages: u64 = field(3)
                .parse()
                .map_err(|_| bad(format!("row {}: messages is not a count", line + 1)))?;
            let ms: f64 = field(4)
                .parse()
                .ok()
                .filter(|ms: &f64| ms.is_finite() && *ms >= 0.0)
                .ok_or_else(|| bad(format!("row {}: delay_ms is not a delay", line + 1)))?;
            delays.counts.insert(key.clone(), messages);
            delays.samples.entry(key).or_default().push(ms);
        }
        Ok(delays)
    }

    /// The four delays of a replica at `scope` (`intra` or `inter`), each from the first
    /// of: the kind's measured transit, the delay the emulator applied to it, the transit (or
    /// applied delay) of the other WARS kinds at that scope pooled (a kind that never
    /// crossed a link, e.g. reads served by the coordinator's own replica), and 0 when no
    /// message crossed a link of that scope at all (the replica is the coordinator itself).
    /// With the source used per kind.
    pub fn replica_delays(&self, scope: &str) -> (ReplicaDelays, Vec<&'static str>) {
        let samples_of = |kind: &str, measure: &str| {
            self.samples
                .get(&(kind.to_string(), scope.to_string(), measure.to_string()))
                .filter(|samples| !samples.is_empty())
        };
        let pooled = |measure: &str| {
            let all: Vec<f64> = KINDS
                .iter()
                .filter_map(|kind| samples_of(kind, measure))
                .flatten()
                .copied()
                .collect();
            (!all.is_empty()).then_some(all)
        };
        let mut delays = Vec::new();
        let mut sources = Vec::new();
        for kind in KINDS {
            let (source, samples) = if let Some(samples) = samples_of(kind, "transit") {
                ("transit", samples.clone())
            } else if let Some(samples) = samples_of(kind, "applied") {
                ("applied", samples.clone())
            } else if let Some(samples) = pooled("transit") {
                ("pooled transit", samples)
            } else if let Some(samples) = pooled("applied") {
                ("pooled applied", samples)
            } else {
                ("none: 0", vec![0.0])
            };
            sources.push(source);
            delays.push(Delay::Empirical(samples.into()));
        }
        let mut delays = delays.into_iter();
        let mut next = || delays.next().unwrap_or(Delay::Empirical(vec![0.0].into()));
        (
            ReplicaDelays {
                write: next(),
                ack: next(),
                read: next(),
                response: next(),
            },
            sources,
        )
    }

    /// The WARS model for N, R, W with the first `local` replicas at `intra` delays and the
    /// others at `inter` delays, from these measurements ([`Self::replica_delays`]).
    pub fn model(
        &self,
        replicas: usize,
        read_quorum: usize,
        write_quorum: usize,
        local: usize,
    ) -> Result<WarsModel> {
        if self.is_empty() {
            return Err(Error::InvalidOption {
                field: "measured delays".to_string(),
                detail: "no delay was measured".to_string(),
            });
        }
        let local = local.min(replicas);
        let mut delays = Vec::with_capacity(replicas);
        delays.extend(std::iter::repeat_n(self.replica_delays("intra").0, local));
        delays.extend(std::iter::repeat_n(
            self.replica_delays("inter").0,
            replicas - local,
        ));
        let model = WarsModel {
            replicas,
            read_quorum,
            write_quorum,
            delays,
            read_coordinator_random: false,
        };
        model.validate()?;
        Ok(model)
    }

    /// Where each scope's four delays come from, for the printed prediction.
    pub fn sources(&self) -> String {
        ["intra", "inter"]
            .iter()
            .map(|scope| {
                let (_, sources) = self.replica_delays(scope);
                let named: Vec<String> = KINDS
                    .iter()
                    .zip(sources)
                    .map(|(kind, source)| format!("{kind}: {source}"))
                    .collect();
                format!("  {scope}-datacenter replicas: {}\n", named.join(", "))
            })
            .collect()
    }

    /// One line per kind, scope and measure: messages, mean, p50, p99 of the samples.
    pub fn summary(&self) -> String {
        let mut text = String::from(
            "measured one-way delays (LINK.STATS of every node; transit = sender's transport \
             to receiver's decode, applied = the emulator's draw):\n",
        );
        for (key, samples) in &self.samples {
            if samples.is_empty() {
                continue;
            }
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
            text.push_str(&format!(
                "  {:<14} {:<5} {:<8} {:>9} messages  mean {:>8.3} ms  p50 {:>8.3}  p99 {:>8.3}\n",
                key.0,
                key.1,
                key.2,
                self.counts.get(key).copied().unwrap_or(0),
                mean,
                at(0.5),
                at(0.99)
            ));
        }
        text
    }
}

/// Parses one node's `LINK.STATS` reply (lines joined by "; ").
fn parse_stats(text: &str) -> Result<BTreeMap<Key, (u64, Vec<f64>)>> {
    let mut stats = BTreeMap::new();
    for line in text.split("; ").filter(|line| !line.trim().is_empty()) {
        let bad = || Error::InvalidOption {
            field: "LINK.STATS reply".to_string(),
            detail: format!(
                "unexpected line {:?}",
                line.chars().take(80).collect::<String>()
            ),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let [kind, scope, measure, "count", count, "mean_ms", _, "samples", samples] =
            words.as_slice()
        else {
            return Err(bad());
        };
        let count: u64 = count.parse().map_err(|_| bad())?;
        let samples = samples
            .split(',')
            .map(|ms| ms.parse::<f64>().map_err(|_| bad()))
            .collect::<Result<Vec<f64>>>()?;
        stats.insert(
            (kind.to_string(), scope.to_string(), measure.to_string()),
            (count, samples),
        );
    }
    Ok(stats)
}

/// Merges the nodes' samples: at most [`MERGED_SAMPLES_MAX`] per key, each node's share in
/// proportion to the messages it saw (its samples are a uniform subset of them).
fn merge(per_node: &[BTreeMap<Key, (u64, Vec<f64>)>]) -> MeasuredDelays {
    let mut merged = MeasuredDelays::default();
    let keys: std::collections::BTreeSet<&Key> =
        per_node.iter().flat_map(|node| node.keys()).collect();
    for key in keys {
        let parts: Vec<&(u64, Vec<f64>)> =
            per_node.iter().filter_map(|node| node.get(key)).collect();
        let total: u64 = parts.iter().map(|(count, _)| count).sum();
        if total == 0 {
            continue;
        }
        // The largest sample that keeps every node's share: a node whose samples are all its
        // messages bounds it.
        let target = parts
            .iter()
            .filter(|(count, samples)| *count > 0 && !samples.is_empty())
            .map(|(count, samples)| samples.len() as f64 * total as f64 / *count as f64)
            .fold(MERGED_SAMPLES_MAX as f64, f64::min);
        let mut samples = Vec::new();
        for (count, node_samples) in &parts {
            let take =
                ((target * *count as f64 / total as f64).round() as usize).min(node_samples.len());
            if take == 0 {
                continue;
            }
            let stride = node_samples.len() as f64 / take as f64;
            samples.extend((0..take).map(|index| node_samples[(index as f64 * stride) as usize]));
        }
        merged.counts.insert(key.clone(), total);
        merged.samples.insert(key.clone(), samples);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, scope: &str, measure: &str) -> Key {
        (kind.to_string(), scope.to_string(), measure.to_string())
    }

    #[test]
    fn parses_and_merges_nodes_in_proportion_to_their_messages() {
        let busy = parse_stats(
            "write_request intra transit count 300 mean_ms 1.0 samples 1.0,1.0,1.0; \
             write_ack intra applied count 1 mean_ms 0.0 samples 0.0",
        )
        .unwrap();
        let quiet =
            parse_stats("write_request intra transit count 100 mean_ms 5.0 samples 5.0").unwrap();
        let merged = merge(&[busy, quiet]);
        let samples = &merged.samples[&key("write_request", "intra", "transit")];
        // Three messages of the busy node per message of the quiet one.
        assert_eq!(samples, &vec![1.0, 1.0, 1.0, 5.0]);
        assert_eq!(
            merged.counts[&key("write_request", "intra", "transit")],
            400
        );
        assert!(parse_stats("write_request intra transit count x").is_err());
    }

    #[test]
    fn the_csv_round_trips_and_the_model_prefers_transit() {
        let mut delays = MeasuredDelays::default();
        for kind in KINDS {
            for (measure, ms) in [("transit", 2.0), ("applied", 1.0)] {
                delays
                    .samples
                    .insert(key(kind, "intra", measure), vec![ms, ms + 1.0]);
                delays.counts.insert(key(kind, "intra", measure), 10);
            }
        }
        let directory = tempfile::tempdir().unwrap();
        delays.write_csv(directory.path()).unwrap();
        let read = MeasuredDelays::read(directory.path()).unwrap();
        assert_eq!(read, delays);
        let (near, sources) = read.replica_delays("intra");
        assert_eq!(sources, vec!["transit"; 4]);
        assert_eq!(near.write.mean_ms(), Some(2.5));
        // Nothing crossed between datacenters: those replicas are reached at no delay.
        let (far, sources) = read.replica_delays("inter");
        assert_eq!(sources, vec!["none: 0"; 4]);
        assert_eq!(far.read.mean_ms(), Some(0.0));
        let model = read.model(3, 1, 1, 2).unwrap();
        assert_eq!(model.delays.len(), 3);
        assert_eq!(model.delays[0].write.mean_ms(), Some(2.5));
        assert_eq!(model.delays[2].write.mean_ms(), Some(0.0));
        // A kind that never crossed a link takes the scope's other kinds, pooled.
        let mut writes_only = MeasuredDelays::default();
        writes_only
            .samples
            .insert(key("write_request", "inter", "transit"), vec![4.0]);
        writes_only
            .samples
            .insert(key("write_ack", "inter", "applied"), vec![1.0]);
        let (far, sources) = writes_only.replica_delays("inter");
        assert_eq!(
            sources,
            vec!["transit", "applied", "pooled transit", "pooled transit"]
        );
        assert_eq!(far.response.mean_ms(), Some(4.0));
        assert!(MeasuredDelays::default().model(3, 1, 1, 3).is_err());
        let missing = MeasuredDelays::read(&directory.path().join("nothing"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nothing"), "{missing}");
    }
}
