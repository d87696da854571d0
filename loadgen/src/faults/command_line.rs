//! Where a run's schedule comes from (flags, then workload properties), and
//! `availability.csv`.

use super::{Schedule, SCHEDULE_FILE_PROPERTY, SCHEDULE_PROPERTY};
use crate::{Error, Result};
use std::path::Path;

/// The schedule a command line asks for: `--schedule` / `--schedule-file`, else the
/// workload properties `schedule` / `schedule.file` (a relative file is looked up from the
/// current directory, then beside the last workload file).
pub fn schedule_from_command_line(
    flag_text: Option<&str>,
    flag_file: Option<&Path>,
    workload_files: &[std::path::PathBuf],
    overrides: &[String],
) -> Result<Option<Schedule>> {
    if flag_text.is_some() && flag_file.is_some() {
        return Err(Error::InvalidFlag {
            flag: "schedule",
            detail: "give either --schedule or --schedule-file, not both".to_string(),
        });
    }
    if let Some(text) = flag_text {
        return Schedule::parse(text).map(Some);
    }
    if let Some(path) = flag_file {
        return Schedule::from_file(path).map(Some);
    }
    let files: Vec<&Path> = workload_files.iter().map(|p| p.as_path()).collect();
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let properties = crate::workload::Properties::from_command_line(&files, &overrides)?;
    if let Some(text) = properties.get(SCHEDULE_PROPERTY) {
        return Schedule::parse(text).map(Some);
    }
    if let Some(name) = properties.get(SCHEDULE_FILE_PROPERTY) {
        let path = Path::new(name);
        let beside = workload_files
            .last()
            .and_then(|file| file.parent())
            .map(|directory| directory.join(path));
        let chosen = match beside {
            Some(beside) if !path.exists() && path.is_relative() && beside.exists() => beside,
            _ => path.to_path_buf(),
        };
        return Schedule::from_file(&chosen).map(Some);
    }
    Ok(None)
}

/// Per interval: operations, errors, availability (1 - errors/ops) and the worst p99 and
/// max latency over the operation kinds; the rows of `availability.csv`.
pub fn write_availability_csv(
    directory: &Path,
    intervals: &[crate::measure::IntervalSnapshot],
) -> Result<std::path::PathBuf> {
    let path = directory.join("availability.csv");
    crate::report::csv_files::write_csv_file(&path, |out| {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record([
            "start_s",
            "end_s",
            "warmup",
            "ops",
            "errors",
            "availability",
            "p99_us_worst_op",
            "max_us",
        ])?;
        for interval in intervals {
            // A read-modify-write is also counted as its read and its update: count it once.
            let parts = interval
                .kinds
                .iter()
                .filter(|kind| kind.kind != crate::measure::OperationKind::ReadModifyWrite);
            let (ops, errors) = parts.fold((0, 0), |(ops, errors), kind| {
                (ops + kind.count, errors + kind.errors)
            });
            let availability = if ops > 0 {
                format!("{:.5}", 1.0 - errors as f64 / ops as f64)
            } else {
                String::new()
            };
            let p99 = interval.kinds.iter().map(|k| k.service.p99_micros).max();
            let max = interval.kinds.iter().map(|k| k.service.max_micros).max();
            writer.write_record([
                format!("{:.3}", interval.start_offset.as_secs_f64()),
                format!("{:.3}", interval.end_offset.as_secs_f64()),
                u8::from(interval.warmup).to_string(),
                ops.to_string(),
                errors.to_string(),
                availability,
                p99.unwrap_or(0).to_string(),
                max.unwrap_or(0).to_string(),
            ])?;
        }
        writer.flush()?;
        Ok(())
    })?;
    Ok(path)
}
