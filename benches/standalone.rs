//! Bench: blocking invokes of the wasm `echo` action over HTTP against the `wasm-invoker standalone`
//! binary: latency (p50/p90/p99) of one keep-alive client, then requests per second and latency of
//! several concurrent clients; the same for a sequence of three `echo`s (per-step cost). Prints a
//! markdown table (copied into benches/RESULTS-standalone.md).
//!
//! Run: `cargo bench --bench standalone` (`BENCH_REQUESTS` sets the requests per phase, default
//! 5000; `BENCH_CLIENTS` the concurrent clients, default 16). Traffic goes only to 127.0.0.1.
//! The latencies and rates also go to `target/bench-results/standalone.json` (not in a smoke run).

#[path = "support/results.rs"]
mod results;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;

const GUEST_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// Bound of any one response.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read.
const MAX_BODY: usize = 16 * 1024 * 1024;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
    auth: String,
}

impl Connection {
    fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(GUEST_KEY)
        );
        Connection {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            host: addr.to_string(),
            auth,
        }
    }

    /// Sends one request and returns (status, body).
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            self.auth,
            body.len()
        );
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        assert!(length <= MAX_BODY);
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, body)
    }
}

fn start_server(data_dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"))
        .args([
            "standalone",
            "--port",
            "0",
            "--user-memory",
            "4096",
            "--manifest",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("factory/tests/docker/runtimes.json"))
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wasm-invoker binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server starts");
    (Server(child), addr)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Runs `requests` blocking invokes over `clients` connections; returns (elapsed, latencies).
fn load(addr: &str, path: &str, clients: usize, requests: usize) -> (Duration, Vec<Duration>) {
    let per_client = requests / clients;
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.to_string();
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut connection = Connection::open(&addr);
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let body = format!("{{\"client\":{c},\"i\":{i}}}");
                    let begin = Instant::now();
                    let (status, reply) = connection.request("POST", &path, body.as_bytes());
                    latencies.push(begin.elapsed());
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
                    assert_eq!(reply, body.as_bytes());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    let elapsed = start.elapsed();
    latencies.sort();
    (elapsed, latencies)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this in test mode: do a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let requests = if smoke {
        50
    } else {
        env_usize("BENCH_REQUESTS", 5000)
    };
    let clients = if smoke {
        2
    } else {
        env_usize("BENCH_CLIENTS", 16)
    };

    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = start_server(dir.path());
    let mut connection = Connection::open(&addr);
    let mut recorder = results::Recorder::start("standalone");
    println!("| phase | clients | requests | req/s | p50 | p90 | p99 |");
    println!("|---|---|---|---|---|---|---|");

    let wasm =
        std::fs::read(ow_action::artifacts::wasm_module("echo").expect("echo builds")).unwrap();
    let created = create(&mut connection, "wasm-echo", "wasm:wasip1", &wasm);
    assert!(created, "the wasm echo action is created");
    bench(
        &addr,
        "wasm echo",
        "wasm-echo",
        clients,
        requests,
        &mut recorder,
    );

    // The request without an activation (an authenticated GET of the action, its document from
    // the server's cache): what an invoke costs beyond its activation.
    let mut get_latencies: Vec<Duration> = (0..requests)
        .map(|_| {
            let begin = Instant::now();
            let (status, body) = connection.request(
                "GET",
                "/api/v1/namespaces/_/actions/wasm-echo?code=false",
                b"",
            );
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            begin.elapsed()
        })
        .collect();
    get_latencies.sort();
    println!(
        "| GET the action (no activation), latency | 1 | {requests} | - | {} | {} | {} |",
        micros(percentile(&get_latencies, 0.50)),
        micros(percentile(&get_latencies, 0.90)),
        micros(percentile(&get_latencies, 0.99)),
    );

    // A sequence of three wasm echos: what a step costs beyond its activation (the same request,
    // two more activations and the sequence's own record).
    let sequence = serde_json::json!({"exec": {"kind": "sequence", "components": [
        "/_/wasm-echo", "/_/wasm-echo", "/_/wasm-echo"
    ]}});
    let (status, body) = connection.request(
        "PUT",
        "/api/v1/namespaces/_/actions/wasm-echo-x3",
        sequence.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    bench(
        &addr,
        "sequence of 3 wasm echos",
        "wasm-echo-x3",
        clients,
        requests,
        &mut recorder,
    );

    // Docker: the test runtime image runs the native echo (scripts/build-test-image builds it). The
    // server accepts the manifest's kinds only when its Docker daemon answered.
    let native = ow_action::artifacts::native_binary("echo")
        .ok()
        .and_then(|path| std::fs::read(path).ok());
    match native {
        Some(native) if create(&mut connection, "docker-echo", "native:test", &native) => {
            bench(
                &addr,
                "docker echo",
                "docker-echo",
                clients,
                (requests / 5).max(clients),
                &mut recorder,
            );
        }
        _ => {
            println!(
                "| docker echo | - | - | skipped: no Docker daemon, test image or native build | - | - | - |"
            );
            recorder.note("docker echo: skipped: no Docker daemon, test image or native build");
        }
    }
    if !smoke {
        recorder.finish();
    }
}

/// Creates an action of `kind` with `code`; whether the server accepted it.
fn create(connection: &mut Connection, name: &str, kind: &str, code: &[u8]) -> bool {
    let put = serde_json::json!({
        "exec": {"kind": kind, "code": base64::engine::general_purpose::STANDARD.encode(code)},
        "limits": {"memory": 128}
    });
    let path = format!("/api/v1/namespaces/_/actions/{name}");
    let (status, body) = connection.request("PUT", &path, put.to_string().as_bytes());
    if status != 200 {
        eprintln!("{name}: {status} {}", String::from_utf8_lossy(&body));
    }
    status == 200
}

/// Warms `name` up, then measures one client (latency) and `clients` clients (throughput).
/// Records each phase's latencies and rate in `recorder`.
fn bench(
    addr: &str,
    label: &str,
    name: &str,
    clients: usize,
    requests: usize,
    recorder: &mut results::Recorder,
) {
    let path = format!("/api/v1/namespaces/_/actions/{name}?blocking=true&result=true");
    // Warm up: compile the module or start the containers, fill the pool.
    let _ = load(addr, &path, clients, (requests / 10).max(clients));
    let mut rates = Vec::new();
    for (phase, n_clients) in [("latency", 1), ("throughput", clients)] {
        let (elapsed, latencies) = load(addr, &path, n_clients, requests);
        let rps = latencies.len() as f64 / elapsed.as_secs_f64();
        println!(
            "| {label}, {phase} | {n_clients} | {} | {rps:.0} | {} | {} | {} |",
            latencies.len(),
            micros(percentile(&latencies, 0.50)),
            micros(percentile(&latencies, 0.90)),
            micros(percentile(&latencies, 0.99)),
        );
        let metric = if n_clients == 1 {
            "warm_latency"
        } else {
            "http_latency_loaded"
        };
        recorder.durations(
            metric,
            &format!("HTTP blocking invoke, {label}, {n_clients} client(s)"),
            &latencies,
        );
        rates.push((n_clients as f64, rps));
    }
    recorder.push(results::Series::points(
        "throughput",
        &format!("HTTP blocking invoke, {label}"),
        "activations/s",
        "concurrent activations",
        rates,
    ));
}
