//! YCSB's `CoreWorkload`: which operation comes next, which key it touches, and the values
//! it writes, drawn exactly as YCSB draws them.
//!
//! The counters (load keys, transaction inserts, sequential keys) are shared by every client
//! thread through [`CoreWorkload::for_another_thread`]; the skewed generators are per thread,
//! which draws from the same distributions without a lock.

pub mod config;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use rand::RngCore;

pub use config::{
    CoreWorkloadConfig, FieldLengthDistribution, InsertOrder, OperationProportions,
    RequestDistribution, ScanLengthDistribution, KNOWN_PROPERTY_NAMES,
};

use super::generator::{
    AcknowledgedCounterGenerator, CounterGenerator, DiscreteGenerator, ExponentialGenerator,
    HotspotIntegerGenerator, ScrambledZipfianGenerator, SequentialGenerator, SkewedLatestGenerator,
    UniformLongGenerator, ZipfianGenerator,
};
use super::keys::build_key_name;
use super::properties::Properties;
use super::record::{field_names, random_printable_bytes, FieldLengthGenerator};
use crate::error::{Error, Result};

/// Draws of a key not yet inserted before giving up; YCSB loops forever, but a key chooser
/// that never lands below the acknowledged limit is a configuration bug worth reporting.
pub const KEY_DRAW_ATTEMPTS_MAX: u32 = 1_000_000;

/// A transaction-phase operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read one record (all fields or one).
    Read,
    /// Overwrite one field or all fields of a record.
    Update,
    /// Insert a new record at the next insert key.
    Insert,
    /// Read a range of records starting at a key.
    Scan,
    /// Read a record, then update it.
    ReadModifyWrite,
}

/// Counters every thread of one run shares.
#[derive(Debug)]
struct SharedCounters {
    load_key_sequence: CounterGenerator,
    transaction_insert_key_sequence: Arc<AcknowledgedCounterGenerator>,
    sequential: Option<Arc<SequentialGenerator>>,
}

#[derive(Debug)]
enum KeyChooser {
    Uniform(UniformLongGenerator),
    Zipfian(ScrambledZipfianGenerator),
    Latest(SkewedLatestGenerator),
    Hotspot(HotspotIntegerGenerator),
    Sequential(Arc<SequentialGenerator>),
    Exponential(ExponentialGenerator),
}

#[derive(Debug)]
enum ScanLengthGenerator {
    Uniform(UniformLongGenerator),
    Zipfian(ZipfianGenerator),
}

/// One thread's view of a core workload.
#[derive(Debug)]
pub struct CoreWorkload {
    config: Arc<CoreWorkloadConfig>,
    shared: Arc<SharedCounters>,
    field_names: Vec<String>,
    operation_chooser: DiscreteGenerator<Operation>,
    key_chooser: KeyChooser,
    field_chooser: UniformLongGenerator,
    field_length: FieldLengthGenerator,
    scan_length: ScanLengthGenerator,
}

impl CoreWorkload {
    /// The first thread's workload; others come from [`Self::for_another_thread`].
    pub fn new(config: CoreWorkloadConfig) -> Self {
        let insert_start = config.insert_start as i64;
        let sequential =
            (config.request_distribution == RequestDistribution::Sequential).then(|| {
                Arc::new(SequentialGenerator::new(
                    insert_start,
                    insert_start + config.insert_count as i64 - 1,
                ))
            });
        let shared = Arc::new(SharedCounters {
            load_key_sequence: CounterGenerator::new(insert_start),
            transaction_insert_key_sequence: Arc::new(AcknowledgedCounterGenerator::new(
                config.record_count as i64,
            )),
            sequential,
        });
        Self::with_shared(Arc::new(config), shared)
    }

    /// Another thread's workload, sharing this one's counters.
    pub fn for_another_thread(&self) -> Self {
        Self::with_shared(Arc::clone(&self.config), Arc::clone(&self.shared))
    }

    fn with_shared(config: Arc<CoreWorkloadConfig>, shared: Arc<SharedCounters>) -> Self {
        let proportions = config.proportions;
        let weighted = [
            (proportions.read, Operation::Read),
            (proportions.update, Operation::Update),
            (proportions.insert, Operation::Insert),
            (proportions.scan, Operation::Scan),
            (proportions.read_modify_write, Operation::ReadModifyWrite),
        ];
        // YCSB adds only positive proportions, in this order; the config rejects a zero sum.
        let operation_chooser = DiscreteGenerator::new(
            weighted
                .into_iter()
                .filter(|(weight, _)| *weight > 0.0)
                .collect(),
        );
        let minimum_length = config.min_field_length_bytes as i64;
        let maximum_length = config.field_length_bytes as i64;
        let field_length = match config.field_length_distribution {
            FieldLengthDistribution::Constant => {
                FieldLengthGenerator::Constant(config.field_length_bytes)
            }
            FieldLengthDistribution::Uniform => FieldLengthGenerator::Uniform(
                UniformLongGenerator::new(minimum_length, maximum_length),
            ),
            FieldLengthDistribution::Zipfian => {
                FieldLengthGenerator::Zipfian(ZipfianGenerator::new(minimum_length, maximum_length))
            }
        };
        let (minimum_scan, maximum_scan) =
            (config.min_scan_length as i64, config.max_scan_length as i64);
        let scan_length = match config.scan_length_distribution {
            ScanLengthDistribution::Uniform => {
                ScanLengthGenerator::Uniform(UniformLongGenerator::new(minimum_scan, maximum_scan))
            }
            ScanLengthDistribution::Zipfian => {
                ScanLengthGenerator::Zipfian(ZipfianGenerator::new(minimum_scan, maximum_scan))
            }
        };
        Self {
            field_names: field_names(&config.field_name_prefix, config.field_count),
            operation_chooser,
            key_chooser: key_chooser(&config, &shared),
            field_chooser: UniformLongGenerator::new(0, config.field_count as i64 - 1),
            field_length,
            scan_length,
            config,
            shared,
        }
    }

    /// The configuration this workload runs.
    pub fn config(&self) -> &CoreWorkloadConfig {
        &self.config
    }

    /// The field names, `fieldnameprefix0 ..`.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    /// The next transaction-phase operation.
    pub fn next_operation(&self, rng: &mut dyn RngCore) -> Operation {
        self.operation_chooser.next_value(rng)
    }

    /// The next key number of the load phase (`insertstart`, `insertstart + 1`, ...).
    pub fn next_load_key_number(&self) -> i64 {
        self.shared.load_key_sequence.next_value()
    }

    /// The key number for an insert in the transaction phase; acknowledge it afterwards,
    /// whether or not the insert succeeded, as YCSB does.
    pub fn next_insert_key_number(&self) -> i64 {
        self.shared.transaction_insert_key_sequence.next_value()
    }

    /// Makes an inserted key number visible to readers.
    pub fn acknowledge_insert(&self, key_number: i64) -> Result<()> {
        self.shared
            .transaction_insert_key_sequence
            .acknowledge(key_number)
    }

    /// The key number a read, update, scan or read-modify-write touches (YCSB's
    /// `nextKeynum`): redrawn until it names a key whose insert has been acknowledged.
    pub fn next_transaction_key_number(&mut self, rng: &mut dyn RngCore) -> Result<i64> {
        let acknowledged = &self.shared.transaction_insert_key_sequence;
        for _ in 0..KEY_DRAW_ATTEMPTS_MAX {
            let highest_acknowledged = acknowledged.last_value();
            let key_number = match &mut self.key_chooser {
                // Exponential counts back from the newest key.
                KeyChooser::Exponential(generator) => {
                    highest_acknowledged - generator.next_value(rng)
                }
                KeyChooser::Uniform(generator) => generator.next_value(rng),
                KeyChooser::Zipfian(generator) => generator.next_value(rng),
                KeyChooser::Latest(generator) => generator.next_value(rng),
                KeyChooser::Hotspot(generator) => generator.next_value(rng),
                KeyChooser::Sequential(generator) => generator.next_value(),
            };
            if (0..=highest_acknowledged).contains(&key_number) {
                return Ok(key_number);
            }
        }
        Err(Error::KeyChooserStalled {
            attempts: KEY_DRAW_ATTEMPTS_MAX,
            highest_acknowledged: acknowledged.last_value(),
        })
    }

    /// The key name of a key number (`buildKeyName`).
    pub fn key_name(&self, key_number: i64) -> String {
        let ordered = self.config.insert_order == InsertOrder::Ordered;
        build_key_name(
            key_number,
            self.config.zero_padding,
            ordered,
            &self.config.key_prefix,
        )
    }

    /// The number of records the next scan reads.
    pub fn next_scan_length(&mut self, rng: &mut dyn RngCore) -> u64 {
        let length = match &mut self.scan_length {
            ScanLengthGenerator::Uniform(generator) => generator.next_value(rng),
            ScanLengthGenerator::Zipfian(generator) => generator.next_value(rng),
        };
        length.max(0) as u64
    }

    /// A field chosen uniformly, for single-field reads and updates.
    pub fn next_field_name(&self, rng: &mut dyn RngCore) -> &str {
        &self.field_names[self.field_chooser.next_value(rng) as usize]
    }

    /// Values for every field, as an insert (or a write-all-fields update) writes them.
    pub fn build_values(&mut self, rng: &mut dyn RngCore) -> Vec<(String, Vec<u8>)> {
        let mut values = Vec::with_capacity(self.field_names.len());
        for name in &self.field_names {
            let length = self.field_length.next_length(rng) as usize;
            values.push((name.clone(), random_printable_bytes(length, rng)));
        }
        values
    }

    /// A value for one field chosen uniformly, as a single-field update writes it.
    pub fn build_single_value(&mut self, rng: &mut dyn RngCore) -> (String, Vec<u8>) {
        let name = self.next_field_name(rng).to_string();
        let length = self.field_length.next_length(rng) as usize;
        (name, random_printable_bytes(length, rng))
    }
}

/// How far the operation proportions may sum away from one before it is worth a warning.
pub const PROPORTION_SUM_TOLERANCE: f64 = 1e-9;

/// Things YCSB accepts silently but that are probably mistakes: property names it does not
/// know (a typo runs a different workload than intended) and proportions that do not sum
/// to one (YCSB normalises them, so `readproportion=0.5` alone means 100% reads).
pub fn workload_warnings(properties: &Properties, config: &CoreWorkloadConfig) -> Vec<String> {
    let mut warnings: Vec<String> = properties
        .unknown(KNOWN_PROPERTY_NAMES)
        .into_iter()
        .map(|name| format!("unknown property {name:?} is ignored (a typo, or a database binding's own property?)"))
        .collect();
    let sum = config.proportions.sum();
    if (sum - 1.0).abs() > PROPORTION_SUM_TOLERANCE {
        warnings.push(format!(
            "operation proportions sum to {sum}, not 1; each is divided by the sum, as YCSB does"
        ));
    }
    warnings
}

fn key_chooser(config: &CoreWorkloadConfig, shared: &SharedCounters) -> KeyChooser {
    let first = config.insert_start as i64;
    let last = first + config.insert_count as i64 - 1;
    match config.request_distribution {
        RequestDistribution::Uniform => KeyChooser::Uniform(UniformLongGenerator::new(first, last)),
        RequestDistribution::Zipfian => {
            // YCSB passes insertstart + insertcount + expected new keys as the maximum.
            let maximum = config.zipfian_key_space_maximum() as i64;
            KeyChooser::Zipfian(ScrambledZipfianGenerator::new(first, maximum))
        }
        RequestDistribution::Latest => KeyChooser::Latest(SkewedLatestGenerator::new(Arc::clone(
            &shared.transaction_insert_key_sequence,
        ))),
        RequestDistribution::Hotspot => KeyChooser::Hotspot(HotspotIntegerGenerator::new(
            first,
            last,
            config.hotspot_data_fraction,
            config.hotspot_operation_fraction,
        )),
        RequestDistribution::Sequential => match &shared.sequential {
            Some(sequential) => KeyChooser::Sequential(Arc::clone(sequential)),
            None => KeyChooser::Sequential(Arc::new(SequentialGenerator::new(first, last))),
        },
        RequestDistribution::Exponential => {
            // YCSB: range = recordcount * exponential.frac.
            let range = config.record_count as f64 * config.exponential_fraction;
            KeyChooser::Exponential(ExponentialGenerator::new(
                config.exponential_percentile,
                range,
            ))
        }
    }
}
