//! Dumps what the guard's classifiers see, for offline experiments: the distilled
//! static table, and per JSONL row its static token ids and full MiniLM embedding.
//!
//!     cargo run --release -p floodgate-embed --example dump_features -- \
//!         MODEL_DIR OUT_DIR FILE.jsonl...
//!
//! Writes OUT_DIR/static.safetensors (distilled once), and for each FILE
//! OUT_DIR/NAME.ids.json (token ids per row) and OUT_DIR/NAME.minilm.f32 (raw
//! little-endian rows of 384 floats).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use floodgate_embed::classifier::read_jsonl;
use floodgate_embed::{EmbedOptions, Embedder, StaticEmbedder, Truncation};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, out, files @ ..] = args.as_slice() else {
        return Err("usage: dump_features MODEL_DIR OUT_DIR FILE.jsonl...".into());
    };
    let (model, out) = (PathBuf::from(model), PathBuf::from(out));
    std::fs::create_dir_all(&out)?;
    let encoder = Embedder::load(
        &model,
        EmbedOptions {
            truncation: Truncation::HeadAndTail,
            ..EmbedOptions::default().with_max_tokens(128)
        },
    )?;
    let table = out.join("static.safetensors");
    let fast = if table.exists() {
        StaticEmbedder::load(&table, &model)?
    } else {
        let started = std::time::Instant::now();
        let s = StaticEmbedder::distill(&encoder, |done, total| {
            eprint!("\rdistilling {done}/{total}");
        })?;
        eprintln!("\ndistilled in {:.1} s", started.elapsed().as_secs_f64());
        s.save(&table)?;
        s
    };
    for file in files {
        let rows = read_jsonl(std::path::Path::new(file))?;
        let name = PathBuf::from(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ids: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| fast.token_ids(&r.text))
            .collect::<Result<_, _>>()?;
        std::fs::write(
            out.join(format!("{name}.ids.json")),
            serde_json::to_string(&ids)?,
        )?;
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let mut f = std::fs::File::create(out.join(format!("{name}.minilm.f32")))?;
        for v in encoder.embed(&texts)? {
            for x in v {
                f.write_all(&x.to_le_bytes())?;
            }
        }
        eprintln!("{file}: {} rows", rows.len());
    }
    Ok(())
}
