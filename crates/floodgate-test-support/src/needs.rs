//! What a test needs from outside the checkout, checked when the tests run.
//!
//! Each check returns what the test needs (a path, a URL, a program) or a sentence that
//! names what is missing and how to provide it. [`trial`] turns a check and a test body
//! into a `libtest-mimic` [`Trial`] that is *ignored* when the check fails, with the
//! reason on stderr, so the summary line counts it as ignored and never as passed. A
//! test target that uses it sets `harness = false` in its `Cargo.toml` and its `main`
//! ends in [`run`]; it keeps the standard summary line
//! (`test result: ok. N passed; 0 failed; M ignored; ...`) and the standard arguments
//! (a name filter, `--ignored`, `--include-ignored`, `--list`, `--test-threads`).
//!
//! Run with `--include-ignored`, a test whose requirement is missing fails with the
//! reason instead of running without it.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use floodgate_models::{catalog_entry, ModelStore};
pub use libtest_mimic::{Arguments, Failed, Trial};

/// What a test needs, or why it cannot have it.
pub type Need<T> = Result<T, String>;

/// The cached file of catalog model `name`, looked up where the product looks:
/// [`ModelStore::default_root`] (`$FLOODGATE_HOME`, else the user's data directory).
pub fn model(name: &str) -> Need<PathBuf> {
    models(&[name]).map(|mut paths| paths.remove(0))
}

/// The cached files of the catalog models `names`, in order; the reason names every
/// missing one.
pub fn models(names: &[&str]) -> Need<Vec<PathBuf>> {
    let root = ModelStore::default_root();
    let store = ModelStore::new(root.clone());
    let mut found = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for &name in names {
        let spec = catalog_entry(name)
            .ok_or_else(|| format!("needs model {name}, which is not in the catalog"))?;
        match store.cached(&spec) {
            Some(path) => found.push(path),
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let noun = if missing.len() == 1 {
        "model"
    } else {
        "models"
    };
    let missing = missing.join(" ");
    Err(format!(
        "needs {noun} {missing} in {}: run `floodgate models pull {missing}`",
        root.display()
    ))
}

/// The URL of a service (Redis, PostgreSQL, NATS) that the test talks to, from the
/// environment variable `var`. Whether the service answers is the test's business: a
/// URL that is set but dead fails the test rather than ignoring it.
pub fn env_url(var: &str) -> Need<String> {
    std::env::var(var)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .ok_or_else(|| format!("needs a service: set {var} to its URL (.ci/run does)"))
}

/// A Redis server: `$FLOODGATE_TEST_REDIS_URL`.
pub fn redis() -> Need<String> {
    env_url("FLOODGATE_TEST_REDIS_URL")
}

/// A PostgreSQL database: `$FLOODGATE_TEST_POSTGRES_URL`. Tests share it with other
/// test processes, so each works in a schema of its own and drops it afterwards.
pub fn postgres() -> Need<String> {
    env_url("FLOODGATE_TEST_POSTGRES_URL")
}

/// A NATS server with JetStream: `$FLOODGATE_TEST_NATS_URL`. Tests use streams of their
/// own and delete them afterwards.
pub fn nats() -> Need<String> {
    env_url("FLOODGATE_TEST_NATS_URL")
}

/// A Python interpreter (`$PYTHON`, else `python3`) that can `import openai`.
pub fn python_with_openai() -> Need<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|out| out.status.success());
    if importable {
        Ok(python)
    } else {
        Err(format!(
            "needs {python} with the `openai` package: run `{python} -m pip install openai`"
        ))
    }
}

/// Permission to download from the internet: `FLOODGATE_TEST_NETWORK=1` (.ci/run sets it).
pub fn network() -> Need<()> {
    match std::env::var("FLOODGATE_TEST_NETWORK").as_deref() {
        Ok("1") => Ok(()),
        _ => Err("needs the network: set FLOODGATE_TEST_NETWORK=1 to allow downloads".into()),
    }
}

/// The gateway-only build of `floodgate` (`cargo build -p floodgate --no-default-features`),
/// named by `FLOODGATE_GATEWAY_ONLY_BIN` (.ci/run builds it and sets it).
pub fn gateway_only_binary() -> Need<PathBuf> {
    const VAR: &str = "FLOODGATE_GATEWAY_ONLY_BIN";
    let hint = "build it with `cargo build --release -p floodgate --no-default-features --target-dir target/gateway-only` and set";
    let path = std::env::var_os(VAR).map(PathBuf::from).ok_or_else(|| {
        format!(
            "needs the gateway-only binary: {hint} {VAR} to target/gateway-only/release/floodgate"
        )
    })?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "needs the gateway-only binary at {} ({VAR}): {hint} it",
            path.display()
        ))
    }
}

/// A test named `name` that runs `test` with what `need` provides, or is ignored, with
/// the reason on stderr, when `need` is missing. `test` fails by panicking, as a
/// `#[test]` function does.
pub fn trial<T: Send + 'static>(
    name: &str,
    need: Need<T>,
    test: impl FnOnce(T) + Send + 'static,
) -> Trial {
    if let Err(why) = &need {
        eprintln!("{name}: ignored, {why}");
    }
    let ignored = need.is_err();
    Trial::test(name, move || match need {
        Ok(provided) => {
            test(provided);
            Ok(())
        }
        Err(why) => Err(Failed::from(why)),
    })
    .with_ignored_flag(ignored)
}

/// Runs `trials` as the standard harness would, with the command line's arguments, and
/// returns the exit code for `main`.
pub fn run(trials: Vec<Trial>) -> ExitCode {
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}
