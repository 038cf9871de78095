//! `floodgate cascade run|train|calibrate`: a route's golden-set answers, its router
//! trained on them, and the thresholds calibrated from them.

pub mod calibrate;
mod chart;
pub mod golden;
pub mod offline;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use floodgate_embed::{EmbedOptions, Embedder, StaticEmbedder, TextEncoder, Truncation};
use floodgate_gateway::cascade::router::{Calibration, Router, RouterFile, STATIC_TABLE_FILE};
use floodgate_gateway::cascade::thresholds::Checks;
use floodgate_gateway::cascade::{cascade_dir, route_named, router_path, RouteConfig};
use floodgate_gateway::config::Config;
use floodgate_gateway::records::Price;

use self::calibrate::{Outcome, Point};
use self::golden::{read_golden, GoldenRow};
use self::offline::{AskOptions, GoldenAnswer, RouterTraining};

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

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
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
    let route = route_named(&config, &args.route)?;
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
        let backend = floodgate_gateway::backend::local::load_cached_model(&config, model).await?;
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
    let route = route_named(&config, &args.route)?;
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
    let route = route_named(&config, &args.route)?;
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
        match chart::draw_frontier(
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
            policy: route.policy.to_string(),
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
            calibrated_at: format!("{}", floodgate_gateway::clock::unix_secs()),
        });
        file.save(&path)?;
        println!("\nwrote the thresholds to {}", path.display());
    }
    Ok(())
}
