//! Pulls all-MiniLM-L6-v2 into the model cache through `ModelStore::pull`,
//! the same call `floodgate models pull all-minilm-l6-v2` makes.
//!
//!     FLOODGATE_HOME=/var/cache/floodgate cargo run --release -p floodgate-embed --example pull_minilm

use std::process::ExitCode;

use floodgate_models::{catalog_entry, ModelStore, PullOptions};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(spec) = catalog_entry("all-minilm-l6-v2") else {
        eprintln!("all-minilm-l6-v2 is not in the catalog");
        return ExitCode::FAILURE;
    };
    let store = ModelStore::new(ModelStore::default_root());
    let opts = PullOptions {
        progress: true,
        ..PullOptions::default()
    };
    match store.pull(&spec, &opts).await {
        Ok(path) => {
            println!("{}", path.display());
            for extra in &spec.extra_files {
                println!("{}", path.with_file_name(&extra.file_name).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
