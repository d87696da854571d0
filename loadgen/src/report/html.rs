//! `kvbench report`: tables and plots of run and sweep directories, in one self-contained
//! HTML page (`index.html`, plots inlined as SVG) with every plot also written as SVG and
//! PNG beside it.
//!
//! The page holds, as far as the inputs allow:
//!
//! - per sweep, the trade-off table (throughput, latency, errors, staleness per cell);
//! - latency percentiles per setting, one chart per operation kind, and the summary table;
//! - throughput and errors over time (`intervals.csv`), failure events (`events.csv`)
//!   drawn as vertical markers and listed;
//! - stale fraction against p99 latency, one point per setting;
//! - t-visibility measured and, for sweep cells on the embedded cluster, predicted by the
//!   PBS WARS model ([`crate::predict`]), with the RMSE between them;
//! - with `merge_hlogs`, the `.hlog` files of every run directory given (e.g. one per
//!   client host of one run) merged by tag into one latency table.

pub mod figures;
pub mod inputs;

use self::inputs::{number, RunInput};
use super::plots::{LineChart, PlotFiles};
use crate::measure::histogram_log::{merge_logs, read_histogram_log_file};
use crate::measure::HistogramSet;
use crate::sweep::table::tradeoff_table;
use crate::sweep::Row;
use crate::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The page's file name.
pub const INDEX_NAME: &str = "index.html";

/// What a report was written to.
#[derive(Debug, Clone)]
pub struct WrittenReport {
    pub index: PathBuf,
    pub plots: Vec<PlotFiles>,
}

/// Options of a report.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions {
    /// Merge the `.hlog` files of all run directories into one latency table.
    pub merge_hlogs: bool,
}

/// Writes the report of `dirs` into `out_dir` (created if missing).
pub fn write_report(dirs: &[PathBuf], out_dir: &Path) -> Result<WrittenReport> {
    write_report_with(dirs, out_dir, ReportOptions::default())
}

/// [`write_report`] with options.
pub fn write_report_with(
    dirs: &[PathBuf],
    out_dir: &Path,
    options: ReportOptions,
) -> Result<WrittenReport> {
    let inputs = inputs::load(dirs)?;
    if inputs.runs.is_empty() && inputs.sweeps.is_empty() {
        return Err(Error::InvalidOption {
            field: "report".to_string(),
            detail: "no run or sweep directory given".to_string(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        context: out_dir.display().to_string(),
        source,
    })?;
    let mut page = Page::default();
    page.heading(dirs);
    for sweep in &inputs.sweeps {
        page.section(&format!("Sweep {}", sweep.label));
        page.pre(&tradeoff_table(&sweep.rows));
        page.text(&format!(
            "All columns: <code>{}</code>.",
            escape(&sweep.dir.join("sweep.csv").display().to_string())
        ));
    }
    let mut plots = Vec::new();
    let mut plot = |page: &mut Page, chart: &LineChart, name: &str| -> Result<()> {
        if chart.series.iter().all(|series| series.points.is_empty()) {
            return Ok(());
        }
        let files = chart.render(out_dir, name)?;
        page.figure(&files, name);
        plots.push(files);
        Ok(())
    };
    let runs = &inputs.runs;
    if !runs.is_empty() {
        page.section("Latency percentiles per setting");
        for op in figures::operation_kinds(runs) {
            let name = format!("latency-{}", op.to_ascii_lowercase());
            plot(&mut page, &figures::latency_chart(runs, &op), &name)?;
        }
        page.summary_table(runs);
        page.section("Throughput and errors over time");
        let throughput = figures::over_time_chart(
            runs,
            "throughput_ops_per_second",
            "throughput over time",
            "ops/s",
        );
        plot(&mut page, &throughput, "throughput")?;
        let errors =
            figures::over_time_chart(runs, "errors", "errors over time", "errors per interval");
        plot(&mut page, &errors, "errors")?;
        page.events_table(runs);
        let kinds = figures::operation_kinds(runs);
        if runs
            .iter()
            .any(|run| figures::stale_fraction(run).is_some())
        {
            page.section("Staleness vs latency");
            for op in kinds.iter().take(2) {
                let name = format!("tradeoff-{}", op.to_ascii_lowercase());
                plot(&mut page, &figures::tradeoff_chart(runs, op), &name)?;
            }
            page.section("t-visibility, measured and predicted");
            let (chart, rmse) = figures::visibility_chart(runs);
            plot(&mut page, &chart, "visibility")?;
            if !rmse.is_empty() {
                let rows: Vec<Vec<String>> = rmse
                    .iter()
                    .map(|(label, error)| vec![label.clone(), format!("{:.2}%", error * 100.0)])
                    .collect();
                page.table(&["setting", "RMSE measured vs predicted"], &rows);
            }
        }
    }
    if options.merge_hlogs {
        page.merged_hlogs(runs)?;
    }
    page.finish();
    let index = out_dir.join(INDEX_NAME);
    std::fs::write(&index, &page.html).map_err(|source| Error::Io {
        context: index.display().to_string(),
        source,
    })?;
    Ok(WrittenReport { index, plots })
}

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Default)]
struct Page {
    html: String,
}

impl Page {
    fn heading(&mut self, dirs: &[PathBuf]) {
        let sources: Vec<String> = dirs
            .iter()
            .map(|dir| format!("<code>{}</code>", escape(&dir.display().to_string())))
            .collect();
        let _ = write!(
            self.html,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>kvbench report</title>\n<style>\
             body{{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}}\
             table{{border-collapse:collapse;margin:1em 0}}\
             td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}\
             th{{background:#eee}} td:first-child{{text-align:left}}\
             pre{{background:#f6f6f6;padding:.5em;overflow-x:auto}}\
             figure{{margin:1em 0}}</style></head><body>\n\
             <h1>kvbench report</h1>\n<p>From {}.</p>\n",
            sources.join(", ")
        );
    }

    fn section(&mut self, title: &str) {
        let _ = writeln!(self.html, "<h2>{}</h2>", escape(title));
    }

    fn text(&mut self, html: &str) {
        let _ = writeln!(self.html, "<p>{html}</p>");
    }

    fn pre(&mut self, text: &str) {
        let _ = writeln!(self.html, "<pre>{}</pre>", escape(text));
    }

    fn figure(&mut self, files: &PlotFiles, name: &str) {
        // The SVG inline (the page needs no other file); the PNG linked.
        let svg = files
            .svg
            .trim_start_matches(|c| c != '<')
            .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let _ = writeln!(
            self.html,
            "<figure id=\"{name}\">{svg}<figcaption><a href=\"{name}.svg\">SVG</a> \
             <a href=\"{name}.png\">PNG</a></figcaption></figure>"
        );
    }

    fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.html.push_str("<table><tr>");
        for cell in header {
            let _ = write!(self.html, "<th>{}</th>", escape(cell));
        }
        self.html.push_str("</tr>\n");
        for row in rows {
            self.html.push_str("<tr>");
            for cell in row {
                let _ = write!(self.html, "<td>{}</td>", escape(cell));
            }
            self.html.push_str("</tr>\n");
        }
        self.html.push_str("</table>\n");
    }

    fn summary_table(&mut self, runs: &[RunInput]) {
        let ms = |row: &Row, column: &str| {
            number(row, column).map_or("-".to_string(), |us| format!("{:.3}", us / 1000.0))
        };
        let mut rows = Vec::new();
        for run in runs {
            for row in &run.summary {
                let cell = |column: &str| row.get(column).cloned().unwrap_or_default();
                rows.push(vec![
                    run.label.clone(),
                    cell("op"),
                    cell("count"),
                    cell("errors"),
                    cell("throughput_ops_per_second"),
                    ms(row, "p50_us"),
                    ms(row, "p90_us"),
                    ms(row, "p99_us"),
                    ms(row, "p999_us"),
                    ms(row, "max_us"),
                ]);
            }
        }
        let header = [
            "setting", "op", "count", "errors", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
            "max ms",
        ];
        self.table(&header, &rows);
    }

    fn events_table(&mut self, runs: &[RunInput]) {
        let rows: Vec<Vec<String>> = runs
            .iter()
            .flat_map(|run| {
                run.events
                    .iter()
                    .map(|(time, what)| vec![run.label.clone(), format!("{time:.3}"), what.clone()])
            })
            .collect();
        if !rows.is_empty() {
            self.text("Failure events (vertical markers above):");
            self.table(&["setting", "time (s)", "event"], &rows);
        }
    }

    fn merged_hlogs(&mut self, runs: &[RunInput]) -> Result<()> {
        let paths: Vec<&PathBuf> = runs.iter().flat_map(|run| &run.hlogs).collect();
        let logs = paths
            .iter()
            .map(|path| read_histogram_log_file(path))
            .collect::<Result<Vec<_>>>()?;
        let merged = merge_logs(&logs);
        self.section(&format!("Merged latency of {} histogram logs", paths.len()));
        let listed: Vec<String> = paths
            .iter()
            .map(|p| format!("<code>{}</code>", escape(&p.display().to_string())))
            .collect();
        self.text(&format!("From {}.", listed.join(", ")));
        self.table(
            &[
                "measurement",
                "count",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
            ],
            &merged_rows(&merged),
        );
        Ok(())
    }

    fn finish(&mut self) {
        self.html.push_str("</body></html>\n");
    }
}

/// One row per tag of a merged set: count and percentiles in ms.
pub fn merged_rows(set: &HistogramSet) -> Vec<Vec<String>> {
    set.tagged()
        .into_iter()
        .map(|(tag, histogram)| {
            let ms = |q: f64| format!("{:.3}", histogram.value_at_quantile(q) as f64 / 1000.0);
            vec![
                tag,
                histogram.len().to_string(),
                ms(0.5),
                ms(0.9),
                ms(0.99),
                ms(0.999),
                format!("{:.3}", histogram.max() as f64 / 1000.0),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests;
