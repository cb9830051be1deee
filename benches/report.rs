//! The results report: reads every suite's summary (`target/bench-results/<suite>.json`, written by
//! the benches through `benches/support/results.rs`) and writes `benches/RESULTS.md` and the plots
//! in `benches/plots/*.svg`:
//!
//! - `warm_latency.svg`: the distribution (CDF) of warm activation latencies, wasm and Docker;
//! - `cold_start.svg`: cold starts, wasm (module in memory, on disk, compiled) and Docker;
//! - `throughput.svg`: activations per second against concurrency;
//! - `kafka_latency.svg`: Kafka end-to-end latency against the load;
//! - `density.svg`: the invoker's resident memory against concurrent sleeping activations.
//!
//! A suite without a summary is reported as "not run". Every plot and table names the machine, the
//! load average and the command of the suites it shows. Plots are SVG drawn by `plotters` without
//! system fonts (the SVG names a font family; the viewer renders the text).
//!
//! Run: `cargo bench --bench report` (after the benches whose results it should show).

#[path = "support/results.rs"]
mod results;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use results::{LoadError, Series, Summary};

/// The suites, in report order, with what each measures.
const SUITES: [(&str, &str); 6] = [
    (
        "wasm",
        "wasm factory through `Container` (criterion: warm, cold, prime, throughput)",
    ),
    (
        "docker",
        "Docker factory beside the wasm factory, cold and warm",
    ),
    (
        "standalone",
        "`wasm-invoker standalone` over HTTP: blocking invokes",
    ),
    ("kafka", "Kafka invoker end to end through Tansu"),
    ("fpc", "FPC (scheduler) invoker end to end through etcd"),
    (
        "density",
        "concurrent sleeping activations per GiB of resident memory",
    ),
];

const WIDTH: u32 = 960;
const HEIGHT: u32 = 680;
/// Lines of provenance under each plot (one per suite shown).
const CAPTION_LINE: u32 = 18;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw {path}: {reason}")]
    Draw { path: PathBuf, reason: String },
}

fn benches_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches")
}

fn palette(index: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x17, 0xbe, 0xcf),
    ];
    COLORS[index % COLORS.len()]
}

/// A series with the summary it came from.
struct Found<'a> {
    summary: &'a Summary,
    series: &'a Series,
}

fn find<'a>(summaries: &'a [Summary], metric: &'a str) -> Vec<Found<'a>> {
    summaries
        .iter()
        .flat_map(|summary| {
            summary
                .metric(metric)
                .map(move |series| Found { summary, series })
        })
        .collect()
}

/// The provenance of the suites `found` comes from, two lines each (machine; load and command) so
/// that they fit the width.
fn captions(found: &[Found<'_>]) -> Vec<String> {
    let mut suites: Vec<&Summary> = Vec::new();
    for f in found {
        if !suites.iter().any(|s| s.suite == f.summary.suite) {
            suites.push(f.summary);
        }
    }
    suites
        .iter()
        .flat_map(|s| {
            [
                format!(
                    "{}: {} UTC, {} ({} cores, {} MiB, Linux {})",
                    s.suite,
                    s.date,
                    s.machine.cpu_model,
                    s.machine.cores,
                    s.machine.memory_mib,
                    s.machine.kernel
                ),
                format!(
                    "    load {:.2}/{:.2}/{:.2} at start, {:.2}/{:.2}/{:.2} at end; {}",
                    s.load_start[0],
                    s.load_start[1],
                    s.load_start[2],
                    s.load_end[0],
                    s.load_end[1],
                    s.load_end[2],
                    s.command
                ),
            ]
        })
        .collect()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Splits the canvas into the plot and a caption strip holding `captions`, drawn.
fn with_caption<'a>(root: &Area<'a>, captions: &[String]) -> Result<Area<'a>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let strip = (captions.len() as u32 + 1) * CAPTION_LINE;
    let (plot, caption) = root.split_vertically(HEIGHT - strip);
    for (i, line) in captions.iter().enumerate() {
        caption
            .draw(&Text::new(
                line.clone(),
                (8, (i as i32) * CAPTION_LINE as i32 + 4),
                ("sans-serif", 15).into_font().color(&BLACK.mix(0.75)),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(plot)
}

/// Draws a plot into `benches/plots/<name>.svg`; `draw` gets the plot area (without caption).
fn plot(
    name: &str,
    found: &[Found<'_>],
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<Option<String>, ReportError> {
    let path = benches_dir().join("plots").join(format!("{name}.svg"));
    if found.is_empty() {
        // No data: no stale plot either.
        let _ = std::fs::remove_file(&path);
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let area = with_caption(&root, &captions(found)).map_err(|reason| ReportError::Draw {
            path: path.clone(),
            reason,
        })?;
        draw(&area).map_err(|reason| ReportError::Draw {
            path: path.clone(),
            reason,
        })?;
        root.present().map_err(|e| ReportError::Draw {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    std::fs::write(&path, svg).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(Some(format!("plots/{name}.svg")))
}

/// Empirical CDFs of the samples of `found`, x on a log scale.
fn cdf_plot(area: &Area<'_>, title: &str, found: &[Found<'_>]) -> Result<(), String> {
    let all: Vec<f64> = found
        .iter()
        .flat_map(|f| f.series.samples.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let max = all.iter().copied().fold(0.0, f64::max);
    if all.is_empty() {
        return Ok(());
    }
    let unit = &found[0].series.unit;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((min * 0.8..max * 1.25).log_scale(), 0.0..1.0)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 15))
        .x_desc(format!("latency ({unit}, log scale)"))
        .y_desc("fraction of activations")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, f) in found.iter().enumerate() {
        let mut sorted = f.series.samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let color = palette(i);
        chart
            .draw_series(LineSeries::new(
                sorted
                    .iter()
                    .enumerate()
                    .map(|(k, v)| (v.max(min), (k + 1) as f64 / n)),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(format!(
                "{} ({}, n = {})",
                f.series.name,
                f.summary.suite,
                sorted.len()
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Median with p10-p90 whiskers of each series of `found`, one column each, y on a log scale.
fn whisker_plot(area: &Area<'_>, title: &str, found: &[Found<'_>]) -> Result<(), String> {
    let stats: Vec<(String, f64, f64, f64)> = found
        .iter()
        .filter_map(|f| {
            Some((
                format!("{} ({})", f.series.name, f.summary.suite),
                f.series.quantile(0.1)?,
                f.series.quantile(0.5)?,
                f.series.quantile(0.9)?,
            ))
        })
        .collect();
    if stats.is_empty() {
        return Ok(());
    }
    let min = stats.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let max = stats.iter().map(|s| s.3).fold(0.0, f64::max);
    let unit = &found[0].series.unit;
    let n = stats.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), (min * 0.5..max * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 15))
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(format!("{unit} (log scale); dot median, bar p10-p90"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, p10, p50, p90)) in stats.iter().enumerate() {
        let x = i as f64;
        let color = palette(i);
        chart
            .draw_series([
                PathElement::new([(x, *p10), (x, *p90)], color.stroke_width(3)),
                PathElement::new([(x - 0.1, *p10), (x + 0.1, *p10)], color.stroke_width(2)),
                PathElement::new([(x - 0.1, *p90), (x + 0.1, *p90)], color.stroke_width(2)),
            ])
            .map_err(|e| e.to_string())?;
        chart
            .draw_series([Circle::new((x, *p50), 5, color.filled())])
            .map_err(|e| e.to_string())?
            .label(format!("{name}: median {p50:.3} {unit}"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Lines through the points of each series of `found`; `log_y` for values spanning decades.
fn line_plot(area: &Area<'_>, title: &str, found: &[Found<'_>], log_y: bool) -> Result<(), String> {
    let points: Vec<(f64, f64)> = found
        .iter()
        .flat_map(|f| f.series.points.iter().copied())
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let x_max = points.iter().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    let y_min = points
        .iter()
        .map(|p| p.1)
        .filter(|y| *y > 0.0)
        .fold(f64::INFINITY, f64::min)
        * 0.5;
    let x_desc = found[0].series.x_label.clone();
    let y_desc = found[0].series.unit.clone();
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if log_y {
        let mut chart = builder
            .build_cartesian_2d(0.0..x_max, (y_min..y_max * 2.0).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 15))
            .x_desc(x_desc)
            .y_desc(format!("{y_desc} (log scale)"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, f) in found.iter().enumerate() {
            draw_line(&mut chart, i, f)?;
        }
        draw_legend(&mut chart)
    } else {
        let mut chart = builder
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 15))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, f) in found.iter().enumerate() {
            draw_line(&mut chart, i, f)?;
        }
        draw_legend(&mut chart)
    }
}

fn draw_legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

fn draw_line<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    index: usize,
    found: &Found<'_>,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let color = palette(index);
    let points = found.series.points.clone();
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(format!("{} ({})", found.series.name, found.summary.suite))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The markdown of one suite: provenance, its series (quantiles or points) and notes.
fn suite_section(out: &mut String, summary: &Summary) {
    let _ = writeln!(out, "Ran {}.\n", summary.provenance());
    let samples: Vec<&Series> = summary
        .series
        .iter()
        .filter(|s| !s.samples.is_empty())
        .collect();
    if !samples.is_empty() {
        let _ = writeln!(
            out,
            "| metric | series | unit | n | p10 | p50 | p90 | p99 |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for s in samples {
            let q = |p| s.quantile(p).map_or("-".into(), |v| format!("{v:.4}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                s.metric,
                s.name,
                s.unit,
                s.samples.len(),
                q(0.1),
                q(0.5),
                q(0.9),
                q(0.99)
            );
        }
        out.push('\n');
    }
    let points: Vec<&Series> = summary
        .series
        .iter()
        .filter(|s| !s.points.is_empty() && !s.x_label.is_empty())
        .collect();
    if !points.is_empty() {
        let _ = writeln!(out, "| metric | series | x | y |");
        let _ = writeln!(out, "|---|---|---|---|");
        for s in points {
            let values: Vec<String> = s
                .points
                .iter()
                .map(|(x, y)| format!("{x:.0} → {y:.2}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} ({}) |",
                s.metric,
                s.name,
                s.x_label,
                values.join(", "),
                s.unit
            );
        }
        out.push('\n');
    }
    for note in &summary.notes {
        let _ = writeln!(out, "- {note}");
    }
    if !summary.notes.is_empty() {
        out.push('\n');
    }
}

fn main() -> Result<(), ReportError> {
    let mut summaries = Vec::new();
    let mut missing = Vec::new();
    for (suite, _) in SUITES {
        match results::load(suite) {
            Ok(summary) => summaries.push(summary),
            Err(LoadError::Missing(path)) => {
                let path = path
                    .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                missing.push((suite, format!("no summary at {path}")));
            }
            Err(error) => missing.push((suite, error.to_string())),
        }
    }
    let plots_dir = benches_dir().join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| ReportError::Write {
        path: plots_dir.clone(),
        source,
    })?;

    let warm = find(&summaries, "warm_latency");
    let cold = find(&summaries, "cold_start");
    let throughput = find(&summaries, "throughput");
    let kafka = find(&summaries, "e2e_latency");
    let density = find(&summaries, "density_rss");
    let figures = [
        (
            "Warm activation latency, wasm and Docker",
            plot("warm_latency", &warm, |a| {
                cdf_plot(a, "Warm activation latency (CDF)", &warm)
            })?,
        ),
        (
            "Cold start, wasm (module in memory, on disk, compiled) and Docker",
            plot("cold_start", &cold, |a| {
                whisker_plot(a, "Cold start", &cold)
            })?,
        ),
        (
            "Throughput against concurrency",
            plot("throughput", &throughput, |a| {
                line_plot(a, "Throughput against concurrency", &throughput, true)
            })?,
        ),
        (
            "Kafka end-to-end latency against load",
            plot("kafka_latency", &kafka, |a| {
                line_plot(a, "End-to-end latency against load", &kafka, true)
            })?,
        ),
        (
            "Density: resident memory against concurrent sleeping activations",
            plot("density", &density, |a| {
                line_plot(
                    a,
                    "Invoker RSS against concurrent activations",
                    &density,
                    false,
                )
            })?,
        ),
    ];

    let mut out = String::from(
        "# Benchmark results\n\nWritten by `cargo bench --bench report` from the summaries the benches leave in \
         `target/bench-results/` (one JSON file per suite, `benches/support/results.rs`). Each suite's \
         own `RESULTS-<suite>.md` explains its cases; this page puts them side by side. Do not edit by \
         hand: run the suites, then the report.\n\n## Plots\n\n",
    );
    for (title, file) in &figures {
        match file {
            Some(file) => {
                let _ = writeln!(out, "### {title}\n\n![{title}]({file})\n");
            }
            None => {
                let _ = writeln!(
                    out,
                    "### {title}\n\nNo data: the suites that measure it were not run.\n"
                );
            }
        }
    }
    out.push_str("## Suites\n\n");
    for (suite, what) in SUITES {
        let _ = writeln!(out, "### `{suite}`: {what}\n");
        match summaries.iter().find(|s| s.suite == suite) {
            Some(summary) => suite_section(&mut out, summary),
            None => {
                let reason = missing
                    .iter()
                    .find(|(name, _)| *name == suite)
                    .map_or("no summary", |(_, reason)| reason.as_str());
                let _ = writeln!(out, "Not run: {reason} (`cargo bench --bench {suite}`).\n");
            }
        }
    }
    let path = benches_dir().join("RESULTS.md");
    std::fs::write(&path, out).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    println!("wrote {}", path.display());
    for (_, file) in figures.iter() {
        if let Some(file) = file {
            println!("wrote benches/{file}");
        }
    }
    Ok(())
}
