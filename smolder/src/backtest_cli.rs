//! `smolder slo backtest FILE [--slo ID] [--from T] [--to T] [--incidents
//! FILE] [--json]`: `POST /api/v1/slos/backtest` on a server, its answer as
//! tables (or as the JSON itself).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};

/// `smolder slo backtest …`
#[derive(Debug, Clone, Args)]
pub(crate) struct BacktestArgs {
    /// The candidate SLO: OpenSLO v1 or Sloth YAML.
    file: PathBuf,
    /// Which SLO of the file, when it defines several.
    #[arg(long)]
    slo: Option<String>,
    /// Start: RFC 3339 or Unix seconds (default: as far back as the
    /// telemetry goes).
    #[arg(long)]
    from: Option<String>,
    /// End: RFC 3339 or Unix seconds (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Known incidents, to score the policy: a JSON array of {"start",
    /// "end"}, or one incident per line as `START END` (or `START,END`);
    /// `#` starts a comment.
    #[arg(long)]
    incidents: Option<PathBuf>,
    /// Print the server's JSON answer instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: crate::client::ApiArgs,
}

/// A time as the API takes it: Unix seconds as a number, anything else as
/// text (RFC 3339).
fn time_value(text: &str) -> Value {
    text.trim()
        .parse::<f64>()
        .map_or_else(|_| json!(text.trim()), |n| json!(n))
}

/// Reads an incidents file: a JSON array, or `START END` lines.
fn incidents(text: &str) -> anyhow::Result<Value> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).context("the incidents file is not a JSON array");
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        let [start, end] = parts.as_slice() else {
            anyhow::bail!(
                "incidents line {}: expected START END, found {line:?}",
                n + 1
            );
        };
        out.push(json!({"start": time_value(start), "end": time_value(end)}));
    }
    Ok(Value::Array(out))
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or_else(
            || n.to_string(),
            |x| format!("{}", (x * 1000.0).round() / 1000.0),
        ),
        Value::Object(m) if m.is_empty() => "—".into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

fn percent(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "—".into(), |x| format!("{:.1}%", x * 100.0))
}

fn alerts_table(alerts: &[Value]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "severity",
        "condition",
        "group",
        "start",
        "end",
        "peak burn long/short",
        "budget spent",
    ]);
    for a in alerts {
        t.add_row([
            text(&a["severity"]),
            text(&a["condition"]),
            text(&a["group"]),
            text(&a["start"]),
            if a["end"].is_null() {
                "still firing".into()
            } else {
                text(&a["end"])
            },
            format!(
                "{} / {}",
                text(&a["peak_long_burn_rate"]),
                text(&a["peak_short_burn_rate"])
            ),
            percent(&a["budget_consumed"]),
        ]);
    }
    t
}

/// The answer as tables.
fn print(answer: &Value) {
    let slo = &answer["slo"];
    println!(
        "SLO {} (objective {}), {} to {}, evaluated every {} s",
        text(&slo["id"]),
        percent(&slo["objective"]),
        text(&answer["from"]),
        text(&answer["to"]),
        text(&answer["interval_seconds"])
    );
    let alerts = answer["alerts"].as_array().cloned().unwrap_or_default();
    println!("\n{} alerts", alerts.len());
    if !alerts.is_empty() {
        println!("{}", alerts_table(&alerts));
    }
    let sent = answer["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!("\n{} notifications", sent.len());
    if !sent.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(["at", "receiver", "status", "alerts"]);
        for n in &sent {
            let alerts: Vec<String> = n["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!(
                        "{} {} {}",
                        text(&a["severity"]),
                        text(&a["condition"]),
                        text(&a["state"])
                    )
                })
                .collect();
            t.add_row([
                text(&n["at"]),
                text(&n["receiver"]),
                text(&n["status"]),
                alerts.join("; "),
            ]);
        }
        println!("{t}");
    }
    let change = &answer["change"];
    if change["same_policy"] == true {
        println!("\nThe running SLO of this id has the same policy.");
    } else if change["current"] == true {
        let list = |k: &str| change[k].as_array().cloned().unwrap_or_default();
        println!(
            "\nAgainst the running SLO: {} added, {} removed, {} moved, {} unchanged",
            list("added").len(),
            list("removed").len(),
            list("moved").len(),
            text(&change["unchanged"])
        );
        for (what, alerts) in [("added", list("added")), ("removed", list("removed"))] {
            if !alerts.is_empty() {
                println!("{what}:\n{}", alerts_table(&alerts));
            }
        }
        for m in list("moved") {
            println!(
                "moved: {} {} from {} – {} to {} – {}",
                text(&m["after"]["severity"]),
                text(&m["after"]["condition"]),
                text(&m["before"]["start"]),
                text(&m["before"]["end"]),
                text(&m["after"]["start"]),
                text(&m["after"]["end"])
            );
        }
    }
    if let Some(measures) = answer["measures"].as_array() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header([
            "condition",
            "severity",
            "alerts",
            "precision",
            "recall",
            "detection (s)",
            "reset (s)",
        ]);
        for m in measures {
            t.add_row([
                text(&m["condition"]),
                text(&m["severity"]),
                text(&m["alerts"]),
                percent(&m["precision"]),
                percent(&m["recall"]),
                text(&m["detection_seconds"]),
                text(&m["reset_seconds"]),
            ]);
        }
        println!("\nAgainst the incidents:\n{t}");
    }
}

/// Runs `smolder slo backtest`; returns the process exit code.
pub(crate) async fn run(args: BacktestArgs) -> anyhow::Result<i32> {
    let yaml = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut body = json!({ "slo": yaml });
    if let Some(id) = &args.slo {
        body["id"] = json!(id);
    }
    if let Some(from) = &args.from {
        body["from"] = time_value(from);
    }
    if let Some(to) = &args.to {
        body["to"] = time_value(to);
    }
    if let Some(file) = &args.incidents {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        body["incidents"] = incidents(&text)?;
    }
    let url = args.api.url("/api/v1/slos/backtest");
    let response = args
        .api
        .client()?
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let answer: Value = serde_json::from_str(&text)
        .with_context(|| format!("POST {url}: {status}: not JSON: {text}"))?;
    if !status.is_success() {
        eprintln!(
            "{status}: {}",
            answer["error"].as_str().unwrap_or(text.as_str())
        );
        return Ok(1);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print(&answer);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_are_read_from_lines_or_json() {
        let lines = "# planned\n2026-03-01T10:00:00Z 2026-03-01T10:30:00Z\n1772442000,1772442600\n";
        assert_eq!(
            incidents(lines).unwrap(),
            json!([
                {"start": "2026-03-01T10:00:00Z", "end": "2026-03-01T10:30:00Z"},
                {"start": 1772442000.0, "end": 1772442600.0},
            ])
        );
        let array = r#"[{"start": 1, "end": 2}]"#;
        assert_eq!(incidents(array).unwrap(), json!([{"start": 1, "end": 2}]));
        let err = incidents("2026-03-01T10:00:00Z\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
