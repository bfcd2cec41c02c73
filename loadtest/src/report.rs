//! Summaries: an aligned table for people, JSON for machines.

use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Latency percentiles of a histogram recorded in microseconds, in milliseconds (µs precision).
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

/// The result as a two-column table: nested fields as `a.b`, long arrays (time series) by length.
pub fn table(result: &Value) -> String {
    let mut rows = Vec::new();
    flatten("", result, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format!("  {key:<width$}  {value:>14}\n"));
    }
    out
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) if fields.is_empty() => rows.push((prefix.into(), "none".into())),
        Value::Object(fields) => {
            for (key, value) in fields {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, rows);
            }
        }
        // A few numbers fit on the line; a time series does not.
        Value::Array(items) if items.len() <= 8 && items.iter().all(Value::is_number) => {
            let items: Vec<String> = items.iter().map(|v| v.to_string()).collect();
            rows.push((prefix.into(), format!("[{}]", items.join(", "))))
        }
        Value::Array(items) => rows.push((prefix.into(), format!("[{} entries]", items.len()))),
        Value::Null => rows.push((prefix.into(), "-".into())),
        Value::String(s) => rows.push((prefix.into(), s.clone())),
        Value::Number(n) => rows.push((prefix.into(), number(n))),
        Value::Bool(b) => rows.push((prefix.into(), b.to_string())),
    }
}

/// Integers as they are, fractions with three decimals (µs when the unit is ms).
fn number(n: &serde_json::Number) -> String {
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => u.to_string(),
        (_, Some(i), _) => i.to_string(),
        (_, _, Some(f)) => format!("{f:.3}"),
        _ => n.to_string(),
    }
}

/// Prints the summary table, and writes the JSON result to `out` (or prints it when there is no
/// file to write, so that nothing is lost).
pub fn finish(result: &Value, out: Option<&Path>) -> anyhow::Result<()> {
    println!("{}", table(result));
    match out {
        Some(path) => {
            std::fs::write(path, serde_json::to_vec_pretty(result)?)?;
            eprintln!("result written to {}", path.display());
        }
        None => println!("{}", serde_json::to_string_pretty(result)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_flattens_and_aligns() {
        let table = table(&json!({
            "scenario": "fanout",
            "lost": 0,
            "latency_ms": {"p99": 12.5},
            "timeseries": [{}, {}, {}],
            "send_errors": {},
            "final_seqs": [7, 9],
        }));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("send_errors") && l.ends_with("none"))
        );
        assert!(lines.iter().any(|l| l.ends_with("[7, 9]")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("latency_ms.p99") && l.ends_with("12.500"))
        );
        assert!(lines.iter().any(|l| l.ends_with("[3 entries]")));
        let value_column = lines[0].len();
        assert!(lines.iter().all(|l| l.len() == value_column));
    }
}
