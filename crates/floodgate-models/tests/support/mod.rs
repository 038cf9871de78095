//! Test fixtures: a tiny HTTP/1.1 server on 127.0.0.1:0 that serves a PEP 691
//! index and wheels built here with the `zip` crate, so the pull tests never
//! touch the internet.

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

#[derive(Clone)]
struct Route {
    content_type: String,
    body: Arc<Vec<u8>>,
    /// Answer 503 this many times before serving the body.
    fail_first: u32,
    /// Only serve when the request's Accept header contains this.
    require_accept: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    hits: HashMap<String, u32>,
}

pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(handle(sock, st.clone()));
            }
        });
        TestServer { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn index_url(&self) -> String {
        self.url("/simple")
    }

    pub fn serve(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.state.lock().unwrap().routes.insert(
            path.to_string(),
            Route {
                content_type: content_type.to_string(),
                body: Arc::new(body),
                fail_first: 0,
                require_accept: None,
            },
        );
    }

    pub fn fail_first(&self, path: &str, n: u32) {
        self.state
            .lock()
            .unwrap()
            .routes
            .get_mut(path)
            .unwrap()
            .fail_first = n;
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Publishes `wheel` as `dist==version` on the index: the project page at
    /// `/simple/<normalized>/` (which insists on the PEP 691 Accept header)
    /// and the file under `/files/`, linked relatively. `listed_sha` lets a
    /// test lie about the hash.
    pub fn publish_wheel(
        &self,
        dist: &str,
        version: &str,
        wheel: Vec<u8>,
        listed_sha: Option<String>,
    ) {
        let norm = normalize(dist);
        let filename = format!("{}-{version}-py3-none-any.whl", dist.replace('-', "_"));
        let sha = listed_sha.unwrap_or_else(|| sha256_hex(&wheel));
        let page = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": norm,
            "versions": ["0.0.1", version],
            "files": [
                // Decoys: an sdist of the right version, a wheel of another one.
                {"filename": format!("{dist}-{version}.tar.gz"), "url": "/files/nope.tar.gz",
                 "hashes": {"sha256": "00"}, "yanked": false},
                {"filename": format!("{}-0.0.1-py3-none-any.whl", dist.replace('-', "_")),
                 "url": "/files/nope.whl", "hashes": {"sha256": "00"}, "yanked": false},
                {"filename": filename, "url": format!("../../files/{filename}#sha256={sha}"),
                 "hashes": {"sha256": sha}, "yanked": false},
            ],
        });
        let page_path = format!("/simple/{norm}/");
        self.serve(&page_path, SIMPLE_JSON, serde_json::to_vec(&page).unwrap());
        self.state
            .lock()
            .unwrap()
            .routes
            .get_mut(&page_path)
            .unwrap()
            .require_accept = Some(SIMPLE_JSON.to_string());
        self.serve(
            &format!("/files/{filename}"),
            "application/octet-stream",
            wheel,
        );
    }

    pub fn wheel_path(dist: &str, version: &str) -> String {
        format!(
            "/files/{}-{version}-py3-none-any.whl",
            dist.replace('-', "_")
        )
    }
}

async fn handle(mut sock: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&req).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let accept = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("accept")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let route = {
        let mut st = state.lock().unwrap();
        *st.hits.entry(path.clone()).or_default() += 1;
        match st.routes.get_mut(&path) {
            Some(r) if r.fail_first > 0 => {
                r.fail_first -= 1;
                Err(503)
            }
            Some(r)
                if r.require_accept
                    .as_ref()
                    .is_some_and(|a| !accept.contains(a.as_str())) =>
            {
                Err(406)
            }
            Some(r) => Ok(r.clone()),
            None => Err(404),
        }
    };
    let (status, ct, body) = match route {
        Ok(r) => (200, r.content_type, r.body),
        Err(code) => (code, "text/plain".to_string(), Arc::new(b"no".to_vec())),
    };
    let header = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(header.as_bytes()).await;
    let _ = sock.write_all(&body).await;
    let _ = sock.shutdown().await;
}

pub fn normalize(name: &str) -> String {
    name.to_lowercase().replace(['_', '.'], "-")
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic incompressible-ish bytes, so deflate actually has work and
/// parts differ from each other.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A wheel (deflate zip) with `files` plus a dist-info directory. The RECORD
/// is padded to `record_padding` bytes so tests can check it is never picked
/// as "the largest file".
pub fn build_wheel(
    dist: &str,
    version: &str,
    files: &[(&str, &[u8])],
    record_padding: usize,
) -> Vec<u8> {
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let info = format!("{}-{version}.dist-info", dist.replace('-', "_"));
    for (name, data) in files {
        zw.start_file(*name, opts).unwrap();
        zw.write_all(data).unwrap();
    }
    zw.start_file(format!("{info}/METADATA"), opts).unwrap();
    zw.write_all(format!("Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n").as_bytes())
        .unwrap();
    zw.start_file(format!("{info}/RECORD"), opts).unwrap();
    zw.write_all(&pseudo_random(99, record_padding)).unwrap();
    zw.finish().unwrap().into_inner()
}
