//! `floodgate events export`: the events in the local log, for a warehouse — JSON lines
//! (every field) or Parquet (the fields analysts filter on as columns, plus the whole
//! event as JSON). Reads the log files without disturbing a server writing them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::{Subcommand, ValueEnum};
use floodgate_gateway::config::Config;
use floodgate_gateway::events::{Event, EventBody};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Write the log's events (from `--since`) to a file.
    Export {
        /// Unix seconds, or a duration back from now: `90s`, `30m`, `24h`, `7d`.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Parquet,
}

pub async fn run(command: EventsCommand) -> ExitCode {
    let EventsCommand::Export {
        since,
        format,
        out,
        config,
    } = command;
    match export(since.as_deref(), format, &out, config.as_deref()) {
        Ok(n) => {
            println!("wrote {n} rows to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("events export: {e}");
            ExitCode::from(1)
        }
    }
}

fn export(
    since: Option<&str>,
    format: Format,
    out: &std::path::Path,
    config: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    let config = Config::load(config)?;
    let since_ms = match since {
        Some(s) => parse_since(s)? * 1000,
        None => 0,
    };
    let dir = floodgate_gateway::events::log_dir(&config);
    let mut events = Vec::new();
    floodgate_eventlog::scan_dir(&dir, 0, |r| {
        if let Ok(e) = serde_json::from_slice::<Event>(&r.payload) {
            if e.time_ms >= since_ms {
                events.push(e);
            }
        }
    })?;
    match format {
        Format::Jsonl => {
            use std::io::Write;
            let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
            for e in &events {
                serde_json::to_writer(&mut w, e)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }
        Format::Parquet => write_parquet(&events, out)?,
    }
    Ok(events.len())
}

fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| {
        anyhow::anyhow!("--since: give unix seconds or a duration like 24h, not {s:?}")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--since: unit must be s, m, h or d"),
    };
    Ok(floodgate_gateway::clock::unix_secs() - secs)
}

fn write_parquet(events: &[Event], out: &std::path::Path) -> anyhow::Result<()> {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("time_ms", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        text("key_id"),
        text("tenant"),
        text("endpoint"),
        text("requested"),
        text("route"),
        text("served_by"),
        Field::new("status", DataType::Int64, true),
        text("outcome"),
        text("error_code"),
        Field::new("prompt_tokens", DataType::Int64, true),
        Field::new("completion_tokens", DataType::Int64, true),
        Field::new("cached_tokens", DataType::Int64, true),
        Field::new("cost_usd", DataType::Float64, true),
        Field::new("total_ms", DataType::Float64, true),
        Field::new("escalated", DataType::Boolean, true),
        Field::new("event", DataType::Utf8, false),
    ]));
    let mut s: Vec<StringBuilder> = (0..10).map(|_| StringBuilder::new()).collect();
    let (mut time, mut status) = (Int64Builder::new(), Int64Builder::new());
    let mut tokens: Vec<Int64Builder> = (0..3).map(|_| Int64Builder::new()).collect();
    let (mut cost, mut total) = (Float64Builder::new(), Float64Builder::new());
    let mut escalated = BooleanBuilder::new();
    let mut json = StringBuilder::new();
    for e in events {
        time.append_value(e.time_ms);
        json.append_value(serde_json::to_string(e)?);
        let r = match &e.body {
            EventBody::Request(r) => Some(r),
            EventBody::Admin(_) => None,
        };
        let strings = [
            Some(e.id.clone()),
            Some(e.body.kind().to_string()),
            r.map(|r| r.key_id.clone()),
            r.map(|r| r.tenant.clone()),
            r.map(|r| r.endpoint.clone()),
            r.map(|r| r.requested.clone()),
            r.and_then(|r| r.route.as_ref().map(|d| d.route.clone())),
            r.and_then(|r| r.served_by.clone()),
            r.map(|r| r.outcome.clone()),
            r.and_then(|r| r.error_code.clone()),
        ];
        for (b, v) in s.iter_mut().zip(strings) {
            b.append_option(v);
        }
        status.append_option(r.map(|r| i64::from(r.status)));
        let t = r.map(|r| r.usage);
        tokens[0].append_option(t.map(|u| i64::from(u.prompt_tokens)));
        tokens[1].append_option(t.map(|u| i64::from(u.completion_tokens)));
        tokens[2].append_option(t.map(|u| i64::from(u.cached_tokens)));
        cost.append_option(r.map(|r| r.cost_usd));
        total.append_option(r.map(|r| r.timings.total_ms));
        escalated.append_option(r.map(|r| r.route.as_ref().is_some_and(|d| d.escalated)));
    }
    let mut s = s.into_iter();
    let mut next = || -> ArrayRef {
        Arc::new(
            s.next()
                .map(|mut b| b.finish())
                .unwrap_or_else(|| StringBuilder::new().finish()),
        )
    };
    let (id, kind, key, tenant, endpoint, requested, route, served, outcome, code) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let mut tokens = tokens
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut tok = || {
        tokens
            .next()
            .unwrap_or_else(|| Arc::new(Int64Builder::new().finish()))
    };
    let columns: Vec<ArrayRef> = vec![
        id,
        Arc::new(time.finish()),
        kind,
        key,
        tenant,
        endpoint,
        requested,
        route,
        served,
        Arc::new(status.finish()),
        outcome,
        code,
        tok(),
        tok(),
        tok(),
        Arc::new(cost.finish()),
        Arc::new(total.finish()),
        Arc::new(escalated.finish()),
        Arc::new(json.finish()),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let file = std::fs::File::create(out)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}
