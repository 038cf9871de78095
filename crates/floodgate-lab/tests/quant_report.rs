//! The quantization report end to end, in process, on a tiny random-weight model (256
//! wide, so llama.cpp's k-quants apply): every variant converted and measured against
//! the source, and the markdown table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floodgate_engine::quant::eval;
use floodgate_engine::quant::Precision;
use floodgate_lab::quant::report;
use floodgate_test_support::tiny_llama::{write_tiny_llama, TinyModelOptions};

const CTX: u32 = 128;

#[test]
fn the_report_measures_each_variant_against_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("tiny-f32.gguf");
    write_tiny_llama(
        &f32_path,
        &TinyModelOptions {
            n_embd: 256,
            n_ff: 512,
            ..Default::default()
        },
    )
    .unwrap();
    let cache = dir.path().join("variants");
    // The report, in-process: the source is the reference row.
    let opts = report::ReportOptions {
        model_name: "tiny".into(),
        source: f32_path.clone(),
        variants: vec![Precision::F16, Precision::Q8_0],
        ctx: CTX,
        chunks: 1,
        threads: 2,
        cache_dir: cache.clone(),
        work_dir: dir.path().join("work"),
    };
    let mut lines = Vec::new();
    let rep = report::run(&opts, &mut |job| eval::run(job), &mut |l| {
        lines.push(l.to_owned())
    })
    .unwrap();
    assert_eq!(rep.source_type, "F32");
    let labels: Vec<&str> = rep.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["source (F32)", "f16", "q8_0"]);
    assert!(rep.rows[0].is_reference);
    assert!(rep.rows[1].quality.mean_kl.unwrap() < rep.rows[2].quality.mean_kl.unwrap());
    let md = rep.to_markdown();
    assert!(md.contains("| variant | file MB |"), "{md}");
    assert!(md.contains("0 (reference)"), "{md}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("work")).unwrap().count(),
        0,
        "the reference log-probabilities are deleted"
    );
}
