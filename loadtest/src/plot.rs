//! `--plot FILE.html`: the per-second time series of a result as a self-contained HTML page.
//!
//! Charts in inline SVG, hand-drawn as polylines, so the page opens anywhere with no script and no
//! network: latency percentiles and throughput per second (every scenario with a time series), the
//! server's RSS and open fds over time (`soak`), and deliveries/s and latency per step (`ramp`).

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 45.0;

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    values: Vec<f64>,
}

/// The x axis of a chart: its name and the label of each point.
struct Axis {
    name: String,
    labels: Vec<String>,
}

/// Writes the plot of `result`: whatever of its per-second `timeseries` (see `timeline.rs`, with
/// a `timeseries_counts` label such as "deliveries"), its server `resources` samples (`soak`) and
/// its `steps` (`ramp`) it has.
pub fn write(result: &Value, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, html(result)?).with_context(|| format!("cannot write {}", path.display()))
}

pub fn html(result: &Value) -> anyhow::Result<String> {
    let scenario = result["scenario"].as_str().unwrap_or("loadtest");
    let mut charts = Vec::new();
    if let Some(points) = result["timeseries"].as_array() {
        charts.extend(per_second(
            points,
            result["timeseries_counts"].as_str().unwrap_or("events"),
        ));
    }
    if let Some(samples) = result["resources"].as_array().filter(|s| !s.is_empty()) {
        charts.extend(resources(samples));
    }
    if let Some(steps) = result["steps"].as_array().filter(|s| !s.is_empty()) {
        charts.extend(steps_charts(steps, result["max_p99_ms"].as_f64()));
    }
    if charts.is_empty() {
        bail!("this result has nothing to plot (no time series, samples or steps)");
    }
    let mut summary = String::new();
    for (key, value) in result.as_object().into_iter().flatten() {
        if !value.is_array() {
            let _ = writeln!(summary, "{key}: {value}");
        }
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>chorus loadtest: {scenario}</title>\
         <style>body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f6f6;padding:1em}}</style>\
         </head><body>\n<h1>chorus loadtest: {scenario}</h1>\n{}\n\
         <h2>Result</h2><pre>{}</pre>\n</body></html>\n",
        charts.join("\n"),
        escape(&summary)
    ))
}

/// The numbers of one field of every point.
fn field(points: &[Value], name: &str) -> Vec<f64> {
    points
        .iter()
        .map(|p| p[name].as_f64().unwrap_or(0.0))
        .collect()
}

/// Latency percentiles (log scale: p50 and max can be three orders of magnitude apart) and
/// throughput, per second of the run.
fn per_second(points: &[Value], counts: &str) -> [String; 2] {
    let seconds = Axis {
        name: "second of the run".into(),
        labels: (0..points.len()).map(|i| i.to_string()).collect(),
    };
    let latency = chart(
        &format!("latency per second ({counts}), ms — log scale"),
        "ms",
        true,
        &seconds,
        &[
            Series {
                name: "p50",
                color: "#1b9e77",
                values: field(points, "p50_ms"),
            },
            Series {
                name: "p90",
                color: "#7570b3",
                values: field(points, "p90_ms"),
            },
            Series {
                name: "p99",
                color: "#d95f02",
                values: field(points, "p99_ms"),
            },
            Series {
                name: "max",
                color: "#999999",
                values: field(points, "max_ms"),
            },
        ],
    );
    let throughput = chart(
        &format!("{counts} per second"),
        &format!("{counts}/s"),
        false,
        &seconds,
        &[Series {
            name: counts,
            color: "#1f78b4",
            values: field(points, "count"),
        }],
    );
    [latency, throughput]
}

/// The server's resident memory and open files over the run (`soak`).
fn resources(samples: &[Value]) -> [String; 2] {
    let at = Axis {
        name: "second of the run".into(),
        labels: field(samples, "second")
            .iter()
            .map(|s| format!("{s:.0}"))
            .collect(),
    };
    let rss = chart(
        "server resident memory, MiB",
        "MiB",
        false,
        &at,
        &[Series {
            name: "RSS",
            color: "#e7298a",
            values: field(samples, "rss_bytes")
                .iter()
                .map(|b| b / (1024.0 * 1024.0))
                .collect(),
        }],
    );
    let fds = chart(
        "server open file descriptors, and client connections open",
        "count",
        false,
        &at,
        &[
            Series {
                name: "fds",
                color: "#66a61e",
                values: field(samples, "fds"),
            },
            Series {
                name: "clients",
                color: "#999999",
                values: field(samples, "connected"),
            },
        ],
    );
    [rss, fds]
}

/// Deliveries/s offered and achieved, and latency, per step of a capacity ramp (`ramp`).
fn steps_charts(steps: &[Value], max_p99_ms: Option<f64>) -> [String; 2] {
    let at = Axis {
        name: "step (publish rate, msg/s)".into(),
        labels: steps
            .iter()
            .map(|s| format!("{:.0}", s["rate_msg_s"].as_f64().unwrap_or(0.0)))
            .collect(),
    };
    let throughput = chart(
        "deliveries per second, by step",
        "deliveries/s",
        false,
        &at,
        &[
            Series {
                name: "offered",
                color: "#999999",
                values: field(steps, "offered_deliveries_per_s"),
            },
            Series {
                name: "achieved",
                color: "#1f78b4",
                values: field(steps, "deliveries_per_s"),
            },
        ],
    );
    let mut latency_series = vec![
        Series {
            name: "p50",
            color: "#1b9e77",
            values: field(steps, "p50_ms"),
        },
        Series {
            name: "p99",
            color: "#d95f02",
            values: field(steps, "p99_ms"),
        },
        Series {
            name: "max",
            color: "#999999",
            values: field(steps, "max_ms"),
        },
    ];
    if let Some(limit) = max_p99_ms {
        latency_series.push(Series {
            name: "p99 limit",
            color: "#e31a1c",
            values: vec![limit; steps.len()],
        });
    }
    let latency = chart(
        "send→receipt latency by step, ms — log scale",
        "ms",
        true,
        &at,
        &latency_series,
    );
    [throughput, latency]
}

/// One chart: x is the point's position (labelled by `x`), y linear from 0 or logarithmic over
/// the data's decades.
fn chart(title: &str, unit: &str, log: bool, x: &Axis, series: &[Series]) -> String {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let positive = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| *v > 0.0);
    let (low, high) = positive.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (y_min, y_max) = if log {
        let lo = if high > 0.0 {
            low.log10().floor()
        } else {
            -1.0
        };
        let hi = if high > 0.0 { high.log10().ceil() } else { 1.0 };
        (lo, hi.max(lo + 1.0))
    } else {
        (0.0, nice_ceiling(high))
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n.max(1) as f64;
    let y_of = |v: f64| {
        let v = if log {
            v.max(10f64.powf(y_min)).log10()
        } else {
            v
        };
        TOP + plot_h * (1.0 - (v - y_min) / (y_max - y_min))
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<h2>{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         font-size=\"12\" font-family=\"sans-serif\">",
        escape(title)
    );
    // Y grid and labels.
    let ticks: Vec<f64> = if log {
        (y_min as i32..=y_max as i32)
            .map(|e| 10f64.powi(e))
            .collect()
    } else {
        (0..=5).map(|k| y_max * k as f64 / 5.0).collect()
    };
    for tick in ticks {
        let y = y_of(tick);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            label(tick)
        );
    }
    // X labels: about ten.
    let step = n.div_ceil(10).max(1);
    for i in (0..n).step_by(step) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(i),
            TOP + plot_h + 16.0,
            escape(x.labels.get(i).map_or("", String::as_str))
        );
    }
    // Axes and their names.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b:.1}\" stroke=\"#333\"/>\
         <line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"#333\"/>\
         <text x=\"{cx:.1}\" y=\"{xl:.1}\" text-anchor=\"middle\">{xn}</text>\
         <text x=\"14\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {cy:.1})\">{u}</text>",
        b = TOP + plot_h,
        r = LEFT + plot_w,
        cx = LEFT + plot_w / 2.0,
        xl = HEIGHT - 8.0,
        cy = TOP + plot_h / 2.0,
        u = escape(unit),
        xn = escape(&x.name),
    );
    // The lines, and a legend at the right.
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{p}\"/>\
             <line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{lx2:.1}\" y2=\"{ly:.1}\" stroke=\"{c}\" stroke-width=\"3\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\">{name}</text>",
            c = s.color,
            p = points.join(" "),
            lx = LEFT + plot_w + 12.0,
            lx2 = LEFT + plot_w + 32.0,
            ly = TOP + 10.0 + 20.0 * k as f64,
            tx = LEFT + plot_w + 38.0,
            ty = TOP + 14.0 + 20.0 * k as f64,
            name = escape(s.name),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// 1, 2 or 5 times a power of ten, at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn label(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{}k", v / 1000.0)
    } else {
        format!("{v}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plot_is_one_self_contained_page() {
        let result = json!({
            "scenario": "fanout",
            "timeseries_counts": "deliveries",
            "timeseries": [
                {"second": 0, "count": 1000, "p50_ms": 1.5, "p90_ms": 3.0, "p99_ms": 9.0, "max_ms": 40.0},
                {"second": 1, "count": 1500, "p50_ms": 1.2, "p90_ms": 2.0, "p99_ms": 7.0, "max_ms": 11.0},
            ],
        });
        let page = html(&result).unwrap();
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(page.matches("<polyline").count(), 5);
        assert!(!page.contains("<script"));
        assert!(
            !page.contains("src=") && !page.contains("href"),
            "nothing is loaded from elsewhere"
        );
        assert!(html(&json!({"scenario": "hold"})).is_err());
    }

    #[test]
    fn soak_samples_and_ramp_steps_are_drawn() {
        let soak = json!({
            "scenario": "soak",
            "timeseries_counts": "deliveries",
            "timeseries": [{"second": 0, "count": 10, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "max_ms": 4.0}],
            "resources": [
                {"second": 0.0, "rss_bytes": 50_000_000u64, "fds": 230, "connected": 200},
                {"second": 5.0, "rss_bytes": 51_000_000u64, "fds": 231, "connected": 198},
            ],
        });
        let page = html(&soak).unwrap();
        assert_eq!(page.matches("<svg").count(), 4);
        assert!(page.contains("resident memory"));

        let ramp = json!({
            "scenario": "ramp",
            "max_p99_ms": 100.0,
            "steps": [
                {"rate_msg_s": 100.0, "offered_deliveries_per_s": 1e4, "deliveries_per_s": 1e4,
                 "p50_ms": 1.0, "p99_ms": 5.0, "max_ms": 9.0},
                {"rate_msg_s": 150.0, "offered_deliveries_per_s": 1.5e4, "deliveries_per_s": 1.2e4,
                 "p50_ms": 40.0, "p99_ms": 300.0, "max_ms": 900.0},
            ],
        });
        let page = html(&ramp).unwrap();
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains(">150<"), "steps are labelled by their rate");
        assert!(page.contains("p99 limit"));
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(130_000.0), 200_000.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(5.0), 5.0);
    }
}
