//! The report's plots, drawn with plotters as SVG (text kept as `<text>`, inlined in the
//! HTML page) and PNG (text rasterized with the embedded DejaVu Sans, so no system font is
//! needed).
//!
//! Every plot is a [`LineChart`]: series of (x, y) points drawn as lines and/or markers,
//! optional category names on the x axis, optional log10 axes (values are transformed and
//! the ticks relabelled, so one coordinate type serves every chart), and optional vertical
//! event markers (failure schedules).

use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Plot size in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 480);

/// The font family every text of a plot uses; registered from the embedded DejaVu Sans.
const FONT: &str = "sans-serif";

/// One named series.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw markers (and a label beside each when [`LineChart::label_points`]).
    pub markers: bool,
    /// Join the points with a line.
    pub line: bool,
}

/// A chart of series.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Names of x = 0, 1, 2, ... (a categorical axis) instead of numbers.
    pub categories: Option<Vec<String>>,
    pub x_log: bool,
    pub y_log: bool,
    /// y axis from 0 to this at least (e.g. 1 for probabilities).
    pub y_min_top: Option<f64>,
    /// Vertical markers: (x, text).
    pub events: Vec<(f64, String)>,
    /// Write the series name beside each marker (scatter plots of settings).
    pub label_points: bool,
}

/// The files a plot was written to, and its SVG text.
#[derive(Debug, Clone)]
pub struct PlotFiles {
    pub svg_path: PathBuf,
    pub png_path: PathBuf,
    pub svg: String,
}

fn register_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font does not load".to_string())
        })
        .clone()
}

fn transform(log: bool, value: f64) -> Option<f64> {
    if !value.is_finite() {
        return None;
    }
    if log {
        (value > 0.0).then(|| value.log10())
    } else {
        Some(value)
    }
}

fn tick(log: bool, value: f64) -> String {
    let value = if log { 10f64.powf(value) } else { value };
    if value == 0.0 || !value.is_finite() {
        return "0".to_string();
    }
    // Two significant digits on log axes (ticks fall on uneven values), three otherwise.
    let digits = if log { 2 } else { 3 };
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let factor = 10f64.powi(digits - 1 - magnitude);
    let rounded = (value * factor).round() / factor;
    let text = format!("{rounded:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

impl LineChart {
    /// The transformed points of series `index`.
    fn points(&self, index: usize) -> Vec<(f64, f64)> {
        self.series[index]
            .points
            .iter()
            .filter_map(|&(x, y)| Some((transform(self.x_log, x)?, transform(self.y_log, y)?)))
            .collect()
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let all: Vec<(f64, f64)> = (0..self.series.len())
            .flat_map(|i| self.points(i))
            .chain(
                self.events
                    .iter()
                    .filter_map(|(x, _)| Some((transform(self.x_log, *x)?, f64::NAN))),
            )
            .collect();
        let fold = |values: Vec<f64>| {
            values
                .into_iter()
                .filter(|v| v.is_finite())
                .fold(None, |acc: Option<(f64, f64)>, v| {
                    Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
                })
                .unwrap_or((0.0, 1.0))
        };
        let (mut x0, mut x1) = fold(all.iter().map(|p| p.0).collect());
        let (mut y0, mut y1) = fold(all.iter().map(|p| p.1).collect());
        if let Some(categories) = &self.categories {
            (x0, x1) = (-0.5, categories.len() as f64 - 0.5);
        } else if x1 - x0 < 1e-9 {
            (x0, x1) = (x0 - 1.0, x1 + 1.0);
        } else {
            let pad = (x1 - x0) * 0.03;
            // Room on the right for the names written beside the points.
            let label_room = if self.label_points { 6.0 } else { 1.0 };
            (x0, x1) = (x0 - pad, x1 + pad * label_room);
        }
        if !self.y_log {
            y0 = y0.min(0.0);
            if let Some(top) = self.y_min_top {
                y1 = y1.max(top);
            }
        }
        if y1 - y0 < 1e-9 {
            (y0, y1) = (y0 - 1.0, y1 + 1.0);
        }
        let pad = (y1 - y0) * 0.06;
        let y0 = if self.y_log { y0 - pad } else { y0 };
        ((x0, x1), (y0, y1 + pad))
    }

    /// Draws the chart on any plotters backend.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        self.draw_inner(root)
            .map_err(|detail| Error::InvalidOption {
                field: format!("plot {:?}", self.title),
                detail,
            })
    }

    fn draw_inner<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(text)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(text)?;
        let categories = self.categories.clone();
        let x_format = move |x: &f64| match &categories {
            Some(names) => {
                let index = x.round();
                if (x - index).abs() < 1e-6 && index >= 0.0 && (index as usize) < names.len() {
                    names[index as usize].clone()
                } else {
                    String::new()
                }
            }
            None => tick(self.x_log, *x),
        };
        let x_ticks = self
            .categories
            .as_ref()
            .map_or(10, |names| names.len() * 2 + 1);
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(x_ticks)
            .x_label_formatter(&x_format)
            .y_label_formatter(&|y| tick(self.y_log, *y))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(text)?;
        for (index, series) in self.series.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            let points = self.points(index);
            if series.line && points.len() > 1 {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(text)?
                    .label(series.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            } else {
                // A legend entry for marker-only series.
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                    .map_err(text)?
                    .label(series.name.clone())
                    .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
            }
            if series.markers || points.len() == 1 {
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|&point| Circle::new(point, 4, color.filled())),
                    )
                    .map_err(text)?;
                if self.label_points {
                    chart
                        .draw_series(points.iter().map(|&point| {
                            Text::new(series.name.clone(), point, (FONT, 13).into_font())
                        }))
                        .map_err(text)?;
                }
            }
        }
        let events: Vec<(f64, &String)> = self
            .events
            .iter()
            .filter_map(|(x, what)| Some((transform(self.x_log, *x)?, what)))
            .collect();
        // Labels of events close together go on rows below each other rather than on top
        // of each other: widths estimated from the character count, in x units.
        let plot_width_px = f64::from(chart.plotting_area().dim_in_pixel().0.max(1));
        let x_per_px = (x1 - x0) / plot_width_px;
        let starts: Vec<f64> = events.iter().map(|(x, _)| *x).collect();
        let widths: Vec<f64> = events
            .iter()
            .map(|(_, what)| (what.chars().count() as f64 * EVENT_CHAR_PX + 6.0) * x_per_px)
            .collect();
        let rows = label_rows(&starts, &widths, EVENT_LABEL_ROWS);
        for ((x, what), row) in events.into_iter().zip(rows) {
            chart
                .draw_series(LineSeries::new(
                    vec![(x, y0), (x, y1)],
                    RED.mix(0.6).stroke_width(1),
                ))
                .map_err(text)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    what.clone(),
                    (x, y1 - (y1 - y0) * (0.04 + 0.05 * row as f64)),
                    (FONT, 12).into_font().color(&RED),
                )))
                .map_err(text)?;
        }
        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font((FONT, 13))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(text)?;
        }
        root.present().map_err(text)?;
        Ok(())
    }

    /// Writes `<dir>/<name>.svg` and `<dir>/<name>.png`.
    pub fn render(&self, dir: &Path, name: &str) -> Result<PlotFiles> {
        register_font().map_err(|detail| Error::InvalidOption {
            field: "plot font".to_string(),
            detail,
        })?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
            self.draw(&root)?;
        }
        let svg_path = dir.join(format!("{name}.svg"));
        std::fs::write(&svg_path, &svg).map_err(|source| Error::Io {
            context: svg_path.display().to_string(),
            source,
        })?;
        let png_path = dir.join(format!("{name}.png"));
        {
            let root = BitMapBackend::new(&png_path, PLOT_SIZE).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(PlotFiles {
            svg_path,
            png_path,
            svg,
        })
    }
}

/// Average width of a character of the 12-pixel event labels (DejaVu Sans), in pixels.
const EVENT_CHAR_PX: f64 = 7.0;

/// Rows of event labels before they are reused.
const EVENT_LABEL_ROWS: usize = 4;

/// The row (0 = top) of each event label, so that labels starting at `starts` with
/// `widths` (same units) do not overlap: taken left to right, each label goes on the first
/// row whose last label ends before it starts; when every one of `max_rows` rows is taken
/// there, on the row that frees up first.
fn label_rows(starts: &[f64], widths: &[f64], max_rows: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..starts.len()).collect();
    order.sort_by(|&a, &b| starts[a].total_cmp(&starts[b]));
    let mut row_ends: Vec<f64> = Vec::new();
    let mut rows = vec![0; starts.len()];
    for index in order {
        let start = starts[index];
        let row = match row_ends.iter().position(|&end| end <= start) {
            Some(row) => row,
            None if row_ends.len() < max_rows.max(1) => {
                row_ends.push(f64::NEG_INFINITY);
                row_ends.len() - 1
            }
            None => (0..row_ends.len())
                .min_by(|&a, &b| row_ends[a].total_cmp(&row_ends[b]))
                .unwrap_or(0),
        };
        row_ends[row] = start + widths[index];
        rows[index] = row;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::label_rows;

    #[test]
    fn event_labels_close_together_go_on_separate_rows() {
        // Three labels each 1.0 wide starting 0.1 apart: three rows.
        assert_eq!(label_rows(&[1.0, 1.1, 1.2], &[1.0; 3], 4), vec![0, 1, 2]);
        // Far apart: all on the top row, in any input order.
        assert_eq!(label_rows(&[9.0, 1.0, 5.0], &[1.0; 3], 4), vec![0, 0, 0]);
        // The top row is reused once its label has ended.
        assert_eq!(label_rows(&[0.0, 0.5, 2.0], &[1.0; 3], 4), vec![0, 1, 0]);
        // More overlapping labels than rows: the row that frees up first is reused.
        assert_eq!(label_rows(&[0.0, 0.1, 0.2], &[1.0; 3], 2), vec![0, 1, 0]);
        assert!(label_rows(&[], &[], 4).is_empty());
    }

    use super::tick;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick(true, 63.096f64.log10()), "63");
        assert_eq!(tick(true, 6.31f64.log10()), "6.3");
        assert_eq!(tick(true, 0.1f64.log10()), "0.1");
        assert_eq!(tick(false, 2500.0), "2500");
        assert_eq!(tick(false, 0.25), "0.25");
        assert_eq!(tick(false, 0.0), "0");
    }
}
