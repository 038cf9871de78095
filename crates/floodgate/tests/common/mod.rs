//! Test harness: writes a tiny random-weight GGUF model and runs the real `floodgate`
//! binary on a random port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use floodgate_test_support::tiny_llama::{write_tiny_llama, TinyModelOptions};

pub mod services;

/// A tiny chat model (ChatML template) shared by all tests of one binary.
pub fn tiny_chat_model() -> &'static Path {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &PATH
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tiny-chat.gguf");
            write_tiny_llama(
                &path,
                &TinyModelOptions {
                    context_length: 4096,
                    ..TinyModelOptions::default()
                },
            )
            .unwrap();
            (dir, path)
        })
        .1
}

/// A tiny base model without a chat template (a completions-only model).
pub fn tiny_base_model() -> &'static Path {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &PATH
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tiny-base.gguf");
            write_tiny_llama(
                &path,
                &TinyModelOptions {
                    context_length: 1024,
                    chat_template: None,
                    seed: 3,
                    ..TinyModelOptions::default()
                },
            )
            .unwrap();
            (dir, path)
        })
        .1
}

/// A `--role worker` config serving the tiny chat model as `tiny`.
pub fn tiny_worker_config() -> String {
    format!(
        r#"
[server]
shutdown_grace_seconds = 1

[[model]]
name = "tiny"
path = "{}"
kv_cache_tokens = 4096
context_length = 2048
max_batch_size = 8
threads = 1
"#,
        tiny_chat_model().display()
    )
}

/// The standard test config: `tiny` (chat) and `tiny-base` (completions only).
pub fn tiny_config(extra: &str) -> String {
    format!(
        r#"
[server]
shutdown_grace_seconds = 120

[limits]
max_body_bytes = 65536

[[model]]
name = "tiny"
path = "{}"
kv_cache_tokens = 8192
context_length = 4096
max_batch_size = 4
threads = 1

[[model]]
name = "tiny-base"
path = "{}"
kv_cache_tokens = 1024
max_batch_size = 2
threads = 1
{extra}
"#,
        tiny_chat_model().display(),
        tiny_base_model().display()
    )
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(config: &str) -> Server {
        Self::start_with_args(config, &[])
    }

    pub fn start_with_args(config: &str, args: &[&str]) -> Server {
        Self::start_with_env(config, args, &[])
    }

    pub fn start_with_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_binary(
            Path::new(env!("CARGO_BIN_EXE_floodgate")),
            config,
            args,
            env,
        )
    }

    /// A server run by the `floodgate` binary at `bin` (another build of it).
    pub fn start_binary(bin: &Path, config: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn(bin, config, "127.0.0.1:0", args, env)
    }

    /// A server on a fixed address (`HOST:PORT`), e.g. one restarted where its
    /// predecessor listened.
    pub fn start_on(listen: &str, config: &str, args: &[&str]) -> Server {
        Self::spawn(
            Path::new(env!("CARGO_BIN_EXE_floodgate")),
            config,
            listen,
            args,
            &[],
        )
    }

    fn spawn(
        bin: &Path,
        config: &str,
        listen: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("floodgate.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--listen", listen])
            .args(args)
            .env("FLOODGATE_HOME", dir.path().join("home"))
            .env("RUST_LOG", "info,llama-cpp-2=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + "listening on http://".len()..];
                    let addr: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", logs.lock().unwrap()));
        let server = Server {
            child,
            base: format!("http://{addr}"),
            logs,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(format!("{}/readyz", self.base)) {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server never became ready: {:?}", self.logs.lock().unwrap());
    }

    /// The server's config file.
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("floodgate.toml")
    }

    /// Runs `floodgate ARGS --config <this server's config>` with the server's home, as
    /// an operator would next to the running server; returns stdout, panicking on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_floodgate"))
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .env("FLOODGATE_HOME", self.home())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "floodgate {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates a key with `floodgate keys create --json EXTRA…`; returns (secret, id).
    pub fn create_key(&self, extra: &[&str]) -> (String, String) {
        let mut args = vec!["keys", "create", "--json"];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&self.cli(&args)).unwrap();
        (
            v["key"].as_str().unwrap().to_string(),
            v["record"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// The server's model cache (`FLOODGATE_HOME`).
    pub fn home(&self) -> PathBuf {
        self._dir.path().join("home")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn metric(&self, name_and_labels: &str) -> f64 {
        let text = reqwest::blocking::get(self.url("/metrics"))
            .unwrap()
            .text()
            .unwrap();
        metric_value(&text, name_and_labels)
    }
}

/// Sums every sample whose name starts with `prefix` (name plus optional label text).
pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address no one listens on yet (`127.0.0.1:PORT`).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Parses an SSE body into its `data:` payloads, with `eventsource-stream` (the parser the
/// gateway reads upstream servers with).
pub fn sse_data(body: &str) -> Vec<String> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let bytes = futures::stream::iter([Ok::<_, std::convert::Infallible>(body.as_bytes())]);
    futures::executor::block_on(bytes.eventsource().collect::<Vec<_>>())
        .into_iter()
        .map(|event| event.unwrap().data)
        .collect()
}

/// POSTs a streaming request and returns its JSON chunks, checking it ends with `[DONE]`.
pub fn stream_chunks(url: &str, body: &serde_json::Value) -> Vec<serde_json::Value> {
    let text = client()
        .post(url)
        .json(body)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Concatenates the text at JSON `pointer` (e.g. `/choices/0/delta/content`) of each chunk.
pub fn joined(chunks: &[serde_json::Value], pointer: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| c.pointer(pointer).and_then(|v| v.as_str()))
        .collect()
}

/// Reads one HTTP/1.1 request from `stream` (a fake upstream's side): its head (request
/// line and headers) and its body; `None` if the peer closed first.
pub fn read_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::Read as _;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// A TCP proxy for fault injection: forwards to `target` until [`Proxy::cut`], which
/// closes every open connection and refuses new ones (as a stopped server would) until
/// [`Proxy::restore`].
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    pub fn start(target: &str) -> Proxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2, target) = (Arc::clone(&up), Arc::clone(&conns), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let mut pair = conns2.lock().unwrap();
                pair.push(client.try_clone().unwrap());
                pair.push(server.try_clone().unwrap());
                drop(pair);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, up, conns }
    }

    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An OpenAI-compatible upstream on a random port that answers every chat request with
/// "Bonjour !" (9 prompt and 3 completion tokens), as JSON or as SSE when asked.
pub fn bonjour_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || bonjour(stream));
        }
    });
    url
}

fn bonjour(mut stream: std::net::TcpStream) {
    use serde_json::{json, Value};
    use std::io::Write;
    let Some((head, body)) = read_request(&stream) else {
        return;
    };
    let json_response = |body: &Value| {
        let b = body.to_string();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
            b.len()
        )
    };
    let response = if head.starts_with("GET") {
        json_response(&json!({"object": "list", "data": [{"id": "m", "object": "model"}]}))
    } else {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if request["stream"] == true {
            let chunk = |delta: Value, finish: Value| {
                let c = json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1,
                    "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                format!("data: {c}\n\n")
            };
            let usage = json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1,
                "model": "m", "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}});
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{}{}{}{}data: {usage}\n\ndata: [DONE]\n\n",
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                chunk(json!({"content": "Bon"}), Value::Null),
                chunk(json!({"content": "jour !"}), Value::Null),
                chunk(json!({}), json!("stop")),
            )
        } else {
            json_response(&json!({
                "id": "up-1", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Bonjour !"}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
            }))
        }
    };
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}
