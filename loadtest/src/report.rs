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

/// The `steps` of a result (`ramp`), one row each, as an aligned table with a header: columns
/// are the number and true/false fields of the first step (texts stay in the JSON), `step` and `rate_msg_s` first, the others in name
/// order. `None` when the result has no steps.
pub fn steps_table(result: &Value) -> Option<String> {
    const LEADING: [&str; 2] = ["step", "rate_msg_s"];
    let steps = result["steps"].as_array().filter(|s| !s.is_empty())?;
    let mut columns: Vec<&String> = steps[0]
        .as_object()?
        .iter()
        .filter(|(_, v)| v.is_number() || v.is_boolean())
        .map(|(k, _)| k)
        .collect();
    columns.sort_by_key(|c| LEADING.iter().position(|l| l == c).unwrap_or(LEADING.len()));
    let cell = |v: &Value| match v {
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = std::iter::once(columns.iter().map(|c| c.to_string()).collect())
        .chain(
            steps
                .iter()
                .map(|step| columns.iter().map(|c| cell(&step[c.as_str()])).collect()),
        )
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}"))
            .collect();
        out.push_str(&format!("  {}\n", cells.join("  ")));
    }
    Some(out)
}

/// Prints the summary table (and the table of steps, when the result has steps), and writes the
/// JSON result to `out` (or prints it when there is no file to write, so that nothing is lost).
pub fn finish(result: &Value, out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(steps) = steps_table(result) {
        println!("{steps}");
    }
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

    #[test]
    fn steps_are_a_table_of_their_own() {
        let result = json!({
            "steps": [
                {"step": 0, "rate_msg_s": 100.0, "passed": true, "first_close_reason": null},
                {"step": 1, "rate_msg_s": 150.0, "passed": false, "first_close_reason": "a long text"},
            ],
        });
        let table = steps_table(&result).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].trim_start().starts_with("step  rate_msg_s"));
        assert!(lines[0].contains("passed"));
        assert!(lines[2].contains("150.000") && lines[2].contains("false"));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
        assert!(!table.contains("first_close_reason"));
        assert!(steps_table(&json!({"scenario": "fanout"})).is_none());
    }
}
