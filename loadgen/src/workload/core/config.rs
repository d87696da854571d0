//! `CoreWorkload`'s properties with YCSB's code defaults (not the template's: absent
//! `requestdistribution` is uniform, absent `measurementtype` is hdrhistogram).
//!
//! YCSB parses lazily and fails late (or silently: `Boolean.parseBoolean("yes")` is false,
//! an out-of-range hot-set fraction becomes 0). Here every value is checked up front and a
//! bad one is an error naming the property.

use serde::{Deserialize, Serialize};

mod reader;

use reader::Reader;

use crate::error::Result;
use crate::workload::generator::exponential::{
    EXPONENTIAL_FRACTION_DEFAULT, EXPONENTIAL_PERCENTILE_DEFAULT,
};
use crate::workload::properties::Properties;

/// Largest `fieldlength` accepted: a record is held in memory per operation.
pub const FIELD_LENGTH_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Largest `fieldcount` accepted.
pub const FIELD_COUNT_MAX: u64 = 65_536;
/// Largest `zeropadding` accepted (a key of mostly zeros is a mistake past this).
pub const ZERO_PADDING_MAX: usize = 1024;

/// Property names YCSB's client and core workload read, plus the ones the workload template
/// mentions; anything else is reported by [`Properties::unknown`] as a likely typo.
pub const KNOWN_PROPERTY_NAMES: &[&str] = &[
    "workload",
    "db",
    "exporter",
    "exportfile",
    "threadcount",
    "target",
    "recordcount",
    "operationcount",
    "maxexecutiontime",
    "table",
    "fieldcount",
    "fieldlength",
    "minfieldlength",
    "fieldlengthdistribution",
    "fieldlengthhistogram",
    "fieldnameprefix",
    "keyprefix",
    "readallfields",
    "readallfieldsbyname",
    "writeallfields",
    "dataintegrity",
    "readproportion",
    "updateproportion",
    "insertproportion",
    "scanproportion",
    "readmodifywriteproportion",
    "requestdistribution",
    "zeropadding",
    "minscanlength",
    "maxscanlength",
    "scanlengthdistribution",
    "insertorder",
    "insertstart",
    "insertcount",
    "hotspotdatafraction",
    "hotspotopnfraction",
    "exponential.percentile",
    "exponential.frac",
    "core_workload_insertion_retry_limit",
    "core_workload_insertion_retry_interval",
    "measurementtype",
    "histogram.buckets",
    "timeseries.granularity",
    "measurement.interval",
    "measurement.histogram.verbose",
    "measurement.raw.output_file",
    "measurement.trackjvm",
    "maxscanrate",
    "scanoptimelimit",
    "discardscannedrecord",
    "columnfamily",
    "reportlatencyforeacherror",
    "latencytrackederrors",
    "status.interval",
    // kvbench's failure schedules (faults.rs).
    "schedule",
    "schedule.file",
];

/// How keys are picked for reads, updates, scans and read-modify-writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestDistribution {
    /// `uniform` (YCSB's code default).
    Uniform,
    /// `zipfian`: scrambled zipfian over the existing plus expected inserted keys.
    Zipfian,
    /// `latest`: skewed towards the most recently inserted keys.
    Latest,
    /// `hotspot`: `hotspotopnfraction` of operations on `hotspotdatafraction` of the keys.
    Hotspot,
    /// `sequential`: every key in order, cycling.
    Sequential,
    /// `exponential`: exponentially fewer accesses further back from the newest key.
    Exponential,
}

/// How field lengths are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldLengthDistribution {
    /// Every field `fieldlength` bytes (the default).
    Constant,
    /// Uniform between `minfieldlength` and `fieldlength`.
    Uniform,
    /// Zipfian between `minfieldlength` and `fieldlength`, favouring short fields.
    Zipfian,
}

/// How scan lengths are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanLengthDistribution {
    /// Uniform between `minscanlength` and `maxscanlength` (the default).
    Uniform,
    /// Zipfian between `minscanlength` and `maxscanlength`, favouring short scans.
    Zipfian,
}

/// Whether key numbers are hashed into key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsertOrder {
    /// `hashed` (the default): key names are `fnvhash64(keynum)`, scattering inserts.
    Hashed,
    /// `ordered`: key names are the key numbers. YCSB treats any value but `hashed` so;
    /// here another value is an error, since a typo would rename every key.
    Ordered,
}

/// Operation weights; YCSB normalises them by their sum, so they need not add up to one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperationProportions {
    /// `readproportion` (default 0.95).
    pub read: f64,
    /// `updateproportion` (default 0.05).
    pub update: f64,
    /// `insertproportion` (default 0).
    pub insert: f64,
    /// `scanproportion` (default 0).
    pub scan: f64,
    /// `readmodifywriteproportion` (default 0).
    pub read_modify_write: f64,
}

impl OperationProportions {
    /// The sum of the weights.
    pub fn sum(&self) -> f64 {
        self.read + self.update + self.insert + self.scan + self.read_modify_write
    }
}

/// Everything a YCSB core workload file configures, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreWorkloadConfig {
    /// `workload`: the Java class; carried for reports (default `site.ycsb.workloads.CoreWorkload`).
    pub workload_class: String,
    /// `table` (default `usertable`).
    pub table: String,
    /// `recordcount`; YCSB's client default is 0, which the core workload turns into
    /// `Integer.MAX_VALUE`.
    pub record_count: u64,
    /// `operationcount` (default 0: run until `maxexecutiontime`).
    pub operation_count: u64,
    /// `fieldcount` (default 10).
    pub field_count: u64,
    /// `fieldlength` in bytes (default 100).
    pub field_length_bytes: u64,
    /// `minfieldlength` in bytes (default 1).
    pub min_field_length_bytes: u64,
    /// `fieldlengthdistribution` (default constant).
    pub field_length_distribution: FieldLengthDistribution,
    /// `fieldnameprefix` (default `field`).
    pub field_name_prefix: String,
    /// `keyprefix` (default `user`). kvbench's addition: YCSB hard-codes `user`.
    pub key_prefix: String,
    /// `readallfields` (default true).
    pub read_all_fields: bool,
    /// `readallfieldsbyname` (default false).
    pub read_all_fields_by_name: bool,
    /// `writeallfields` (default false).
    pub write_all_fields: bool,
    /// `dataintegrity` (default false; needs constant field lengths).
    pub data_integrity: bool,
    /// The five operation proportions.
    pub proportions: OperationProportions,
    /// `requestdistribution` (default uniform).
    pub request_distribution: RequestDistribution,
    /// `zeropadding` (default 1).
    pub zero_padding: usize,
    /// `minscanlength` (default 1).
    pub min_scan_length: u64,
    /// `maxscanlength` (default 1000).
    pub max_scan_length: u64,
    /// `scanlengthdistribution` (default uniform).
    pub scan_length_distribution: ScanLengthDistribution,
    /// `insertorder` (default hashed).
    pub insert_order: InsertOrder,
    /// `insertstart` (default 0).
    pub insert_start: u64,
    /// `insertcount` (default `recordcount - insertstart`).
    pub insert_count: u64,
    /// `hotspotdatafraction` (default 0.2).
    pub hotspot_data_fraction: f64,
    /// `hotspotopnfraction` (default 0.8).
    pub hotspot_operation_fraction: f64,
    /// `exponential.percentile` (default 95).
    pub exponential_percentile: f64,
    /// `exponential.frac` (default 0.8571428571).
    pub exponential_fraction: f64,
    /// `threadcount` (default 1).
    pub thread_count: u64,
    /// `target` in operations per second (default 0: unthrottled).
    pub target_operations_per_second: f64,
    /// `maxexecutiontime` in seconds (default 0: no limit).
    pub max_execution_time_seconds: u64,
    /// `measurementtype` (YCSB's code default `hdrhistogram`, not the template's).
    pub measurement_type: String,
    /// `histogram.buckets` (default 1000).
    pub histogram_buckets: u64,
    /// `timeseries.granularity` in milliseconds (default 1000).
    pub timeseries_granularity_ms: u64,
    /// `core_workload_insertion_retry_limit` (default 0).
    pub insertion_retry_limit: u64,
    /// `core_workload_insertion_retry_interval` in seconds (default 3).
    pub insertion_retry_interval_seconds: u64,
}

impl Default for CoreWorkloadConfig {
    /// YCSB's code defaults, as for a workload file that sets nothing.
    fn default() -> Self {
        Self::from_properties(&Properties::new())
            .expect("YCSB's code defaults are a valid workload")
    }
}

impl CoreWorkloadConfig {
    /// Reads and checks every core-workload property, defaulting absent ones as YCSB does.
    pub fn from_properties(properties: &Properties) -> Result<Self> {
        let reader = Reader { properties };
        let record_count = match reader.number("recordcount", 0_u64)? {
            0 => i32::MAX as u64,
            count => count,
        };
        let insert_start = reader.number("insertstart", 0_u64)?;
        let insert_count =
            reader.number("insertcount", record_count.saturating_sub(insert_start))?;
        let config = Self {
            workload_class: reader.text("workload", "site.ycsb.workloads.CoreWorkload"),
            table: reader.text("table", "usertable"),
            record_count,
            operation_count: reader.number("operationcount", 0)?,
            field_count: reader.number("fieldcount", 10)?,
            field_length_bytes: reader.number("fieldlength", 100)?,
            min_field_length_bytes: reader.number("minfieldlength", 1)?,
            field_length_distribution: reader.field_length_distribution()?,
            field_name_prefix: reader.text("fieldnameprefix", "field"),
            key_prefix: reader.text("keyprefix", "user"),
            read_all_fields: reader.boolean("readallfields", true)?,
            read_all_fields_by_name: reader.boolean("readallfieldsbyname", false)?,
            write_all_fields: reader.boolean("writeallfields", false)?,
            data_integrity: reader.boolean("dataintegrity", false)?,
            proportions: reader.proportions()?,
            request_distribution: reader.request_distribution()?,
            zero_padding: reader.number("zeropadding", 1)?,
            min_scan_length: reader.number("minscanlength", 1)?,
            max_scan_length: reader.number("maxscanlength", 1000)?,
            scan_length_distribution: reader.scan_length_distribution()?,
            insert_order: reader.insert_order()?,
            insert_start,
            insert_count,
            hotspot_data_fraction: reader.fraction("hotspotdatafraction", 0.2)?,
            hotspot_operation_fraction: reader.fraction("hotspotopnfraction", 0.8)?,
            exponential_percentile: reader
                .float("exponential.percentile", EXPONENTIAL_PERCENTILE_DEFAULT)?,
            exponential_fraction: reader.float("exponential.frac", EXPONENTIAL_FRACTION_DEFAULT)?,
            thread_count: reader.number("threadcount", 1)?,
            target_operations_per_second: reader.float("target", 0.0)?,
            max_execution_time_seconds: reader.number("maxexecutiontime", 0)?,
            measurement_type: reader
                .text("measurementtype", "hdrhistogram")
                .trim()
                .to_string(),
            histogram_buckets: reader.number("histogram.buckets", 1000)?,
            timeseries_granularity_ms: reader.number("timeseries.granularity", 1000)?,
            insertion_retry_limit: reader.number("core_workload_insertion_retry_limit", 0)?,
            insertion_retry_interval_seconds: reader
                .number("core_workload_insertion_retry_interval", 3)?,
        };
        config.check(&reader)?;
        Ok(config)
    }

    /// Cross-property checks YCSB makes (or should make) before running.
    fn check(&self, reader: &Reader<'_>) -> Result<()> {
        let limit = |name: &str, detail: String| reader.invalid(name, detail);
        if self.insert_start + self.insert_count > self.record_count {
            return Err(limit(
                "insertcount",
                format!(
                    "insertstart ({}) + insertcount ({}) exceeds recordcount ({})",
                    self.insert_start, self.insert_count, self.record_count
                ),
            ));
        }
        if self.insert_count == 0 {
            return Err(limit("insertcount", "no keys to operate on".to_string()));
        }
        if self.field_count == 0 || self.field_count > FIELD_COUNT_MAX {
            return Err(limit(
                "fieldcount",
                format!("must be 1 to {FIELD_COUNT_MAX}"),
            ));
        }
        if self.field_length_bytes > FIELD_LENGTH_BYTES_MAX {
            return Err(limit(
                "fieldlength",
                format!("over the {FIELD_LENGTH_BYTES_MAX}-byte limit"),
            ));
        }
        if self.field_length_distribution != FieldLengthDistribution::Constant
            && self.min_field_length_bytes > self.field_length_bytes
        {
            return Err(limit("minfieldlength", "exceeds fieldlength".to_string()));
        }
        if self.data_integrity
            && self.field_length_distribution != FieldLengthDistribution::Constant
        {
            return Err(limit(
                "dataintegrity",
                "needs fieldlengthdistribution=constant".to_string(),
            ));
        }
        if self.min_scan_length > self.max_scan_length {
            return Err(limit("minscanlength", "exceeds maxscanlength".to_string()));
        }
        if self.zero_padding > ZERO_PADDING_MAX {
            return Err(limit(
                "zeropadding",
                format!("over the limit of {ZERO_PADDING_MAX}"),
            ));
        }
        if self.thread_count == 0 {
            return Err(limit("threadcount", "must be at least 1".to_string()));
        }
        let percentile = self.exponential_percentile;
        if self.request_distribution == RequestDistribution::Exponential
            && !(percentile > 0.0 && percentile < 100.0)
        {
            return Err(limit(
                "exponential.percentile",
                "must be between 0 and 100, exclusive".to_string(),
            ));
        }
        Ok(())
    }

    /// The upper end of the scrambled-zipfian key space: YCSB sizes it for the keys present
    /// plus twice the expected inserts, so inserts do not move the popular keys.
    pub fn zipfian_key_space_maximum(&self) -> u64 {
        // YCSB: (int) (opcount * insertproportion * 2.0), the "fudge factor" of 2.
        let expected_new_keys =
            (self.operation_count as f64 * self.proportions.insert * 2.0) as i32 as i64;
        (self.insert_start + self.insert_count).saturating_add_signed(expected_new_keys)
    }
}
