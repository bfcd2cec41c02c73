//! Summaries: a table for people, JSON for machines.

use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Latency percentiles of a histogram recorded in microseconds, in milliseconds.
pub fn percentiles_ms(histogram: &Histogram<u64>) -> Value {
    let ms = |v: u64| v as f64 / 1000.0;
    json!({
        "count": histogram.len(),
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p90": ms(histogram.value_at_quantile(0.90)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "p999": ms(histogram.value_at_quantile(0.999)),
        "max": ms(histogram.max()),
    })
}

/// Prints the result and writes it as JSON when asked.
pub fn finish(result: &Value, out: Option<&Path>) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(result)?);
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_vec_pretty(result)?)?;
        eprintln!("result written to {}", path.display());
    }
    Ok(())
}
