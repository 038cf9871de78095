//! `floodgate cascade run|train|calibrate` and `floodgate cost project`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use floodgate_embed::{EmbedOptions, Embedder, StaticEmbedder, TextEncoder, Truncation};
use floodgate_gateway::cascade::calibrate::{self, Checks, Outcome, Point};
use floodgate_gateway::cascade::golden::{read_golden, GoldenRow};
use floodgate_gateway::cascade::offline::{self, AskOptions, GoldenAnswer, RouterTraining};
use floodgate_gateway::cascade::router::{Calibration, Router, RouterFile, STATIC_TABLE_FILE};
use floodgate_gateway::cascade::{cascade_dir, router_path, RouteConfig};
use floodgate_gateway::config::Config;
use floodgate_gateway::records::{Price, RecordStore};

#[derive(Args, Clone)]
pub struct RouteArgs {
    #[arg(long, env = "FLOODGATE_CONFIG")]
    config: Option<PathBuf>,
    /// The route (from the configuration; `auto` is the default cascade).
    #[arg(long, default_value = "auto")]
    route: String,
    /// Golden questions: JSONL of {"question", "answers": [...]}.
    #[arg(long)]
    golden: PathBuf,
}

#[derive(Subcommand)]
pub enum CascadeCommand {
    /// Answer a golden set with every tier of a route (resumable; answers are kept
    /// under <models.home>/cascade/runs/).
    Run {
        #[command(flatten)]
        route: RouteArgs,
        /// System message before each question ("" for none).
        #[arg(long, default_value = "Answer the question in a few words.")]
        system: String,
        #[arg(long, default_value_t = 32)]
        max_tokens: u32,
        /// Only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Train the route's router (pre-router and post scorer) on a golden set both tiers
    /// have answered (`cascade run`). Clears any earlier calibration.
    Train {
        #[command(flatten)]
        route: RouteArgs,
        /// The pre-router's sentence embedding: `minilm` (all-MiniLM-L6-v2, a few ms per
        /// prompt), `static` (its distilled token table, microseconds) or `none`.
        #[arg(long, default_value = "minilm")]
        encoder: String,
        /// Word n-grams the pre-router reads.
        #[arg(long, default_value_t = 256)]
        ngrams: usize,
    },
    /// Print the cost–quality curve of the route's policy on a golden set and the
    /// cheapest thresholds that keep `target` × the large tier's quality.
    Calibrate {
        #[command(flatten)]
        route: RouteArgs,
        #[arg(long, default_value_t = 0.95)]
        target: f64,
        /// Store the chosen thresholds in the route's router file.
        #[arg(long)]
        write: bool,
        /// Evaluate the thresholds already stored (or configured) instead of choosing.
        #[arg(long, conflicts_with = "write")]
        evaluate: bool,
        /// Write the curve as a PNG chart here.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Grid steps per threshold.
        #[arg(long, default_value_t = 40)]
        steps: usize,
    },
}

#[derive(Subcommand)]
pub enum CostCommand {
    /// Project monthly cost from the recorded traffic mix, with and without cascades.
    Project {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
        #[arg(long, default_value_t = 10.0)]
        queries_per_user_day: f64,
        /// Traffic of the last N days is the mix.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
}

fn route_of(config: &Config, name: &str) -> Result<RouteConfig, String> {
    config
        .route
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no route `{name}` in the configuration (routes: {:?})",
                config.route.iter().map(|r| &r.name).collect::<Vec<_>>()
            )
        })
}

fn two_tiers(route: &RouteConfig) -> Result<(), String> {
    if route.tiers.len() == 2 {
        Ok(())
    } else {
        Err(format!(
            "route `{}` has {} tiers; cascades are calibrated for two",
            route.name,
            route.tiers.len()
        ))
    }
}

pub async fn run(command: CascadeCommand) -> ExitCode {
    let result = match command {
        CascadeCommand::Run {
            route,
            system,
            max_tokens,
            limit,
        } => run_golden(&route, AskOptions { system, max_tokens }, limit).await,
        CascadeCommand::Train {
            route,
            encoder,
            ngrams,
        } => train(&route, &encoder, ngrams).await,
        CascadeCommand::Calibrate {
            route,
            target,
            write,
            evaluate,
            chart,
            steps,
        } => calibrate_cmd(&route, target, write, evaluate, chart.as_deref(), steps),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_golden(
    args: &RouteArgs,
    opts: AskOptions,
    limit: Option<usize>,
) -> Result<(), String> {
    let config = load(args.config.as_deref())?;
    let route = route_of(&config, &args.route)?;
    let mut rows = read_golden(&args.golden)?;
    if let Some(n) = limit {
        rows.truncate(n);
    }
    let dir = cascade_dir(&config);
    for tier in &route.tiers {
        let path = offline::answers_path(&dir, tier, &args.golden);
        let done = offline::read_answers(&path);
        let todo: Vec<(usize, &GoldenRow)> = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| !done.contains_key(&offline::row_id(r, *i)))
            .collect();
        eprintln!(
            "{tier}: {} answered, {} to go -> {}",
            done.len(),
            todo.len(),
            path.display()
        );
        if todo.is_empty() {
            continue;
        }
        let model = config
            .model_for(tier)
            .ok_or_else(|| format!("tier `{tier}` is not a configured model"))?;
        let backend = floodgate_gateway::server::load_cached_model(&config, model).await?;
        let price = Price::of(&config, tier);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let (mut right, mut n) = (0usize, 0usize);
        let started = std::time::Instant::now();
        for (i, row) in todo {
            let id = offline::row_id(row, i);
            let answer = offline::ask(&backend, tier, price, id, row, &opts).await?;
            right += usize::from(answer.correct);
            n += 1;
            let line = serde_json::to_string(&answer).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(|e| e.to_string())?;
            if n % 25 == 0 {
                eprintln!(
                    "  {tier}: {n} answered ({:.1}% right, {:.2} s each)",
                    100.0 * right as f64 / n as f64,
                    started.elapsed().as_secs_f64() / n as f64
                );
            }
        }
        eprintln!(
            "  {tier}: done, {n} answered this run, {:.1}% right",
            100.0 * right as f64 / n.max(1) as f64
        );
    }
    Ok(())
}

/// Each tier's stored answers, by question id.
type TierAnswers = std::collections::BTreeMap<String, GoldenAnswer>;

/// Both tiers' stored answers to the golden file, paired by question.
fn answers(
    config: &Config,
    route: &RouteConfig,
    golden: &Path,
) -> Result<(Vec<GoldenRow>, [TierAnswers; 2]), String> {
    two_tiers(route)?;
    let rows = read_golden(golden)?;
    let dir = cascade_dir(config);
    let small = offline::read_answers(&offline::answers_path(&dir, &route.tiers[0], golden));
    let large = offline::read_answers(&offline::answers_path(&dir, &route.tiers[1], golden));
    if small.is_empty() || large.is_empty() {
        return Err(format!(
            "no stored answers for {} — run `floodgate cascade run --route {} --golden {}` first",
            golden.display(),
            route.name,
            golden.display()
        ));
    }
    Ok((rows, [small, large]))
}

fn encoder(config: &Config, kind: &str) -> Result<Option<Box<dyn TextEncoder>>, String> {
    let minilm = floodgate_gateway::learned::embedder_dir(config);
    match kind {
        "none" => Ok(None),
        "minilm" => Ok(Some(Box::new(
            Embedder::load(
                &minilm,
                EmbedOptions {
                    truncation: Truncation::HeadAndTail,
                    ..EmbedOptions::default().with_max_tokens(128)
                },
            )
            .map_err(|e| format!("{e} (run `floodgate models pull all-minilm-l6-v2`)"))?,
        ))),
        "static" => {
            let table = cascade_dir(config).join(STATIC_TABLE_FILE);
            if !table.exists() {
                // The guard's table is the same distillation; reuse it if installed.
                let guard = floodgate_gateway::learned::classifier_dir(config)
                    .join(floodgate_gateway::learned::STATIC_TABLE_FILE);
                if guard.exists() {
                    std::fs::create_dir_all(cascade_dir(config)).map_err(|e| e.to_string())?;
                    std::fs::copy(&guard, &table).map_err(|e| e.to_string())?;
                } else {
                    eprintln!("distilling the static token table from MiniLM (about a minute)");
                    let full = Embedder::load(&minilm, EmbedOptions::default())
                        .map_err(|e| e.to_string())?;
                    let t = StaticEmbedder::distill(&full, |_, _| {}).map_err(|e| e.to_string())?;
                    std::fs::create_dir_all(cascade_dir(config)).map_err(|e| e.to_string())?;
                    t.save(&table).map_err(|e| e.to_string())?;
                }
            }
            Ok(Some(Box::new(
                StaticEmbedder::load(&table, &minilm).map_err(|e| e.to_string())?,
            )))
        }
        other => Err(format!(
            "--encoder `{other}`: expected minilm, static or none"
        )),
    }
}

async fn train(args: &RouteArgs, encoder_kind: &str, ngrams: usize) -> Result<(), String> {
    let config = load(args.config.as_deref())?;
    let route = route_of(&config, &args.route)?;
    let (rows, [small, large]) = answers(&config, &route, &args.golden)?;
    let pairs = offline::paired(&rows, &small, &large);
    let enc = {
        let config = config.clone();
        let kind = encoder_kind.to_string();
        tokio::task::spawn_blocking(move || encoder(&config, &kind))
            .await
            .map_err(|e| e.to_string())??
    };
    let settings = RouterTraining {
        ngrams,
        ..RouterTraining::default()
    };
    let (file, report) = offline::train_router(&route.name, &route.tiers, &pairs, enc, &settings)?;
    let path = router_path(&config, &route);
    file.save(&path)?;
    println!("router for route `{}` -> {}", route.name, path.display());
    println!(
        "  {} questions, small tier right on {} ({:.1}%)",
        report.examples,
        report.small_right,
        100.0 * report.small_right as f64 / report.examples as f64
    );
    println!(
        "  the large tier is right where the small one is not on {} ({:.1}%)",
        report.escalation_helps,
        100.0 * report.escalation_helps as f64 / report.examples as f64
    );
    println!(
        "  out-of-fold AUC: pre-router (prompt -> escalation helps) {:.3}; post scorer (answer -> right) {:.3}",
        report.pre_auc, report.post_auc
    );
    println!("  not calibrated yet: run `floodgate cascade calibrate --write`");
    Ok(())
}

fn fmt_threshold(t: Option<f32>) -> String {
    match t {
        None => "off".into(),
        Some(x) if x.is_infinite() => "never".into(),
        Some(x) => format!("{x:.3}"),
    }
}

fn calibrate_cmd(
    args: &RouteArgs,
    target: f64,
    write: bool,
    evaluate: bool,
    chart: Option<&Path>,
    steps: usize,
) -> Result<(), String> {
    let config = load(args.config.as_deref())?;
    let route = route_of(&config, &args.route)?;
    let (rows, [small, large]) = answers(&config, &route, &args.golden)?;
    let pairs = offline::paired(&rows, &small, &large);
    let path = router_path(&config, &route);
    let router =
        floodgate_gateway::cascade::router_file(&config, &route).and_then(|(file, origin, dir)| {
            eprintln!("router: {origin}");
            Router::from_file(
                file,
                &origin,
                &dir,
                &floodgate_gateway::learned::embedder_dir(&config),
            )
        });
    let router = match router {
        Ok(r) => Some(r),
        Err(e) if route.checks().pre || route.checks().post => {
            return Err(format!("{e} — run `floodgate cascade train` first"))
        }
        Err(_) => None,
    };
    let outcomes: Vec<Outcome> = offline::outcomes(router.as_ref(), &pairs);
    let [(sq, sc), (lq, lc)] = calibrate::tiers_alone(&outcomes);
    let (oracle_post, oracle_pre) = calibrate::oracle(&outcomes);
    let oracle_gain = calibrate::oracle_gain(&outcomes);
    let checks = Checks {
        pre: route.checks().pre && router.as_ref().is_some_and(|r| r.file.pre.is_some()),
        post: route.checks().post && router.as_ref().is_some_and(|r| r.file.post.is_some()),
    };
    let points = calibrate::sweep(&outcomes, checks, steps);
    let frontier = calibrate::frontier(&points);
    let saving = |cost: f64| {
        if lc > 0.0 {
            100.0 * (1.0 - cost / lc)
        } else {
            0.0
        }
    };
    println!(
        "# Cascade calibration: route `{}` ({} -> {}), policy `{}`\n",
        route.name, route.tiers[0], route.tiers[1], route.policy
    );
    println!(
        "golden set: {} ({} questions answered by both tiers); target {:.0}% of the large tier's quality\n",
        args.golden.display(),
        outcomes.len(),
        100.0 * target
    );
    println!("| operating point | quality | cost / request (USD) | escalated | saving vs large |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, q: f64, c: f64, e: f64| {
        println!(
            "| {name} | {:.1}% | {c:.8} | {:.1}% | {:.1}% |",
            100.0 * q,
            100.0 * e,
            saving(c)
        )
    };
    row(&format!("{} alone", route.tiers[0]), sq, sc, 0.0);
    row(&format!("{} alone", route.tiers[1]), lq, lc, 1.0);
    row(
        "oracle, post (small answers, exactly its wrong answers escalate)",
        oracle_post.quality,
        oracle_post.cost,
        oracle_post.escalation,
    );
    row(
        "oracle, pre (exactly the questions the small tier gets wrong go to the large tier)",
        oracle_pre.quality,
        oracle_pre.cost,
        oracle_pre.escalation,
    );
    row(
        "perfect router (exactly the questions only the large tier gets right escalate, before generating)",
        oracle_gain.quality,
        oracle_gain.cost,
        oracle_gain.escalation,
    );
    let chosen: Option<Point> = if evaluate {
        let t = floodgate_gateway::cascade::effective_thresholds(
            &route,
            router.as_ref().map(|r| &r.file),
        );
        Some(calibrate::evaluate(&outcomes, t))
    } else {
        calibrate::cheapest_meeting(&points, lq, target)
    };
    match &chosen {
        Some(p) => row(
            &format!(
                "**cascade** (pre {} / post {}){}",
                fmt_threshold(p.thresholds.pre),
                fmt_threshold(p.thresholds.post),
                if evaluate {
                    ", stored thresholds"
                } else {
                    ", chosen"
                }
            ),
            p.quality,
            p.cost,
            p.escalation,
        ),
        None => println!(
            "| cascade | no threshold keeps {:.0}% of the large tier's quality | | | |",
            100.0 * target
        ),
    }
    println!(
        "\n## Cost-quality frontier ({} points on the grid)\n",
        points.len()
    );
    println!("| pre threshold | post threshold | quality | % of large | cost / request | escalated | saving |");
    println!("|---|---|---|---|---|---|---|");
    for p in &frontier {
        println!(
            "| {} | {} | {:.1}% | {:.1}% | {:.8} | {:.1}% | {:.1}% |",
            fmt_threshold(p.thresholds.pre),
            fmt_threshold(p.thresholds.post),
            100.0 * p.quality,
            if lq > 0.0 {
                100.0 * p.quality / lq
            } else {
                0.0
            },
            p.cost,
            100.0 * p.escalation,
            saving(p.cost)
        );
    }
    if let Some(chart) = chart {
        let oracles = [
            ("oracle (post)", oracle_post),
            ("oracle (pre)", oracle_pre),
            ("perfect router", oracle_gain),
        ];
        match crate::quant_cmd::draw_frontier(
            chart,
            &format!("Cascade {} -> {}", route.tiers[0], route.tiers[1]),
            &frontier,
            &[(sq, sc), (lq, lc)],
            &oracles,
            chosen.as_ref(),
        ) {
            Ok(()) => println!("\nchart: {}", chart.display()),
            Err(e) => eprintln!("no chart: {e}"),
        }
    }
    if write {
        let Some(p) = chosen else {
            return Err("nothing to write: no operating point meets the target".into());
        };
        let Some(router) = router else {
            return Err("nothing to write: the route has no router".into());
        };
        let mut file: RouterFile = router.file;
        file.calibration = Some(Calibration {
            policy: route.policy.clone(),
            pre_threshold: p.thresholds.pre.filter(|t| t.is_finite()),
            post_threshold: p.thresholds.post.filter(|t| t.is_finite()),
            target,
            golden: args.golden.display().to_string(),
            questions: outcomes.len(),
            quality: p.quality,
            cost_usd_per_request: p.cost,
            escalation_rate: p.escalation,
            tier_quality: vec![sq, lq],
            tier_cost_usd_per_request: vec![sc, lc],
            calibrated_at: format!("{}", floodgate_gateway::records::now_unix()),
        });
        file.save(&path)?;
        println!("\nwrote the thresholds to {}", path.display());
    }
    Ok(())
}

pub async fn cost(command: CostCommand) -> ExitCode {
    let CostCommand::Project {
        config,
        users,
        queries_per_user_day,
        days,
    } = command;
    match project(config.as_deref(), users, queries_per_user_day, days).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn project(
    config: Option<&Path>,
    users: u64,
    queries_per_user_day: f64,
    days: u32,
) -> Result<(), String> {
    let config = load(config)?;
    let db = config.state_db_path();
    let store = floodgate_gateway::records::SqliteRecordStore::open(&db)
        .await
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let rows = store
        .usage_recent(days)
        .await
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    if requests == 0 {
        return Err(format!(
            "no recorded traffic in the last {days} days in {}",
            db.display()
        ));
    }
    let monthly = users as f64 * queries_per_user_day * 30.0;
    // Per route: requests, recorded cost, and the cost had its last tier answered all.
    let mut by_route: std::collections::BTreeMap<&str, (u64, f64, f64)> = Default::default();
    for r in &rows {
        by_route.entry(r.route.as_str()).or_default();
    }
    for (name, entry) in by_route.iter_mut() {
        let route_rows: Vec<_> = rows.iter().filter(|r| r.route == *name).collect();
        let n: u64 = route_rows.iter().map(|r| r.requests).sum();
        let cost: f64 = route_rows.iter().map(|r| r.cost_usd).sum();
        let last = config
            .route
            .iter()
            .find(|r| r.name == *name)
            .and_then(|r| r.tiers.last());
        let without = match last {
            Some(last) => {
                let (ln, lcost) = route_rows
                    .iter()
                    .filter(|r| &r.model == last)
                    .fold((0u64, 0f64), |(a, b), r| (a + r.requests, b + r.cost_usd));
                if ln > 0 {
                    n as f64 * lcost / ln as f64
                } else {
                    // No request reached the last tier: use the calibration's figure.
                    let route = route_of(&config, name)?;
                    let file = RouterFile::load(&router_path(&config, &route)).ok();
                    let per = file
                        .and_then(|f| f.calibration)
                        .and_then(|c| c.tier_cost_usd_per_request.last().copied())
                        .unwrap_or(f64::NAN);
                    n as f64 * per
                }
            }
            None => cost,
        };
        *entry = (n, cost, without);
    }
    println!(
        "# Cost projection: {users} users × {queries_per_user_day} queries/day × 30 days = {monthly:.0} requests/month\n"
    );
    println!("traffic mix: {requests} requests recorded in the last {days} days\n");
    println!("| route / model | share | cost / request (USD) | monthly, as served | monthly, last tier only |");
    println!("|---|---|---|---|---|");
    let (mut with_total, mut without_total) = (0.0, 0.0);
    for (name, (n, cost, without)) in &by_route {
        let share = *n as f64 / requests as f64;
        let m_with = monthly * share * cost / *n as f64;
        let m_without = monthly * share * without / *n as f64;
        with_total += m_with;
        without_total += m_without;
        println!(
            "| {name} | {:.1}% | {:.8} | ${m_with:.2} | ${m_without:.2} |",
            100.0 * share,
            cost / *n as f64
        );
    }
    println!("| **total** | 100% | | **${with_total:.2}** | **${without_total:.2}** |");
    if without_total > 0.0 {
        println!(
            "\nthe cascade saves {:.1}% against answering every cascade request with its last tier",
            100.0 * (1.0 - with_total / without_total)
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum AbCommand {
    /// Latency, cost and feedback quality per variant of a split route or of a model
    /// with versions, with 95% confidence intervals, from the stored decision records.
    Report {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        /// A route, or a model with versions (its requests are grouped by the variant
        /// that served them).
        #[arg(long, alias = "model")]
        route: String,
        /// Records of the last N days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

/// Mean and the half-width of its 95% confidence interval (normal approximation).
fn mean_ci(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (var / n).sqrt())
}

fn fmt_ci((mean, half): (f64, f64), digits: usize) -> String {
    if mean.is_nan() {
        "–".into()
    } else if half.is_nan() {
        format!("{mean:.digits$}")
    } else {
        format!("{mean:.digits$} ± {half:.digits$}")
    }
}

pub async fn ab(command: AbCommand) -> ExitCode {
    let AbCommand::Report {
        config,
        route,
        days,
    } = command;
    match ab_report(config.as_deref(), &route, days).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn ab_report(config: Option<&Path>, route: &str, days: u32) -> Result<(), String> {
    let config = load(config)?;
    let db = config.state_db_path();
    let store = floodgate_gateway::records::SqliteRecordStore::open(&db)
        .await
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let since = floodgate_gateway::records::now_unix() - i64::from(days) * 86_400;
    let records = store
        .route_records(route, since)
        .await
        .map_err(|e| format!("{}: {e}", db.display()))?;
    if records.is_empty() {
        return Err(format!(
            "no decision records for route or model `{route}` in the last {days} days"
        ));
    }
    let mut variants: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
    for (r, rating) in &records {
        variants
            .entry(r.served_by.as_str())
            .or_default()
            .push((r, *rating));
    }
    println!(
        "# A/B report: `{route}`, last {days} days, {} requests\n",
        records.len()
    );
    println!("Means with 95% confidence intervals; quality is the reputation-weighted feedback rating (-1..1) of rated requests.\n");
    println!("| variant | requests | share | completed | latency ms | cost / request (USD) | rated | rating |");
    println!("|---|---|---|---|---|---|---|---|");
    for (variant, rows) in &variants {
        let completed: Vec<_> = rows
            .iter()
            .filter(|(r, _)| r.status == "completed")
            .collect();
        let latency: Vec<f64> = completed.iter().map(|(r, _)| r.latency_ms).collect();
        let cost: Vec<f64> = rows.iter().map(|(r, _)| r.cost_usd).collect();
        let ratings: Vec<f64> = rows.iter().filter_map(|(_, q)| *q).collect();
        println!(
            "| {variant} | {} | {:.1}% | {:.1}% | {} | {} | {} | {} |",
            rows.len(),
            100.0 * rows.len() as f64 / records.len() as f64,
            100.0 * completed.len() as f64 / rows.len() as f64,
            fmt_ci(mean_ci(&latency), 1),
            fmt_ci(mean_ci(&cost), 8),
            ratings.len(),
            fmt_ci(mean_ci(&ratings), 2),
        );
    }
    Ok(())
}
