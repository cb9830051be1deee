//! `wasm-invoker-proxy`: a tiny, static OpenWhisk action runtime that speaks the protocol of
//! `openwhisk/dockerskeleton` (`core/actionProxy/actionproxy.py`) for native executables.
//!
//! - `POST /init` with `{"value":{"code": <base64 of an executable or of a zip holding exec>,
//!   "binary": true, "env": {...}}}` writes `<action dir>/exec` (mode 0755) and answers 200 `OK`. A
//!   second init answers 403 `{"error":"Cannot initialize the action more than once."}`.
//! - `POST /run` runs `<action dir>/exec` with the parameters as compact JSON in `argv[1]` (and always
//!   on stdin; only on stdin when longer than `MAX_ARG_STRLEN`), exports every other top-level string
//!   key of the request as `__OW_<KEY>`, takes the last stdout line as the result (a JSON object or
//!   array, else 502 `{"error":"The action did not return a dictionary or array."}`), echoes the other
//!   output to its own stdout/stderr and ends with the log sentinel on both streams.
//!
//! Differences from the skeleton, all deliberate: `/init`'s `env` reaches the executable (as in the
//! Node.js and Python runtimes); a raw executable (not only a zip) is accepted; connections and runs are
//! served concurrently; and when the executable is killed by SIGKILL (the kernel's OOM killer, in a
//! container with a memory limit) the proxy exits without answering, so the invoker sees the connection
//! drop and reads Docker's `OOMKilled` flag, as it does for single-process runtimes.
//!
//! Environment: `FLASK_PROXY_PORT` (default 8080, the skeleton's variable) and `PROXY_ACTION_DIR`
//! (default `/action`, for running the proxy outside a container).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// The line every OpenWhisk runtime writes to stdout and stderr after each activation.
const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
/// Linux's longest single argument (`MAX_ARG_STRLEN - 1`, as the skeleton counts it); longer parameters
/// travel on stdin only.
const MAX_ARG_STRLEN: usize = 131_071;
/// Largest request body accepted (the Node.js runtime's 48 MB body limit). Threat: a peer streaming an
/// unbounded body into memory.
const MAX_REQUEST_BYTES: usize = 48 * 1024 * 1024;
/// Largest total size of the files a zip may unpack to. Threat: a zip bomb filling the container's disk.
const MAX_UNZIPPED_BYTES: u64 = 512 * 1024 * 1024;
/// The port runtimes listen on.
const DEFAULT_PORT: u16 = 8080;

const ERR_REINIT: &str = "Cannot initialize the action more than once.";
const ERR_NO_BINARY: &str =
    "The action failed to generate or locate a binary. See logs for details.";
const ERR_NOT_DICT: &str = "The action did not return a dictionary or array.";
const ERR_BAD_ARGS: &str = "The action did not receive a dictionary or array as an argument.";

/// What `/init` left behind for the runs.
#[derive(Debug, Default)]
struct State {
    initialized: bool,
    env: BTreeMap<String, String>,
}

struct Proxy {
    action_dir: PathBuf,
    state: Mutex<State>,
}

impl Proxy {
    fn exec_path(&self) -> PathBuf {
        self.action_dir.join("exec")
    }
}

fn main() {
    let port = std::env::var("FLASK_PROXY_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(DEFAULT_PORT);
    let action_dir = std::env::var_os("PROXY_ACTION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/action"));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let proxy = Arc::new(Proxy {
        action_dir,
        state: Mutex::new(State::default()),
    });
    if let Err(e) = runtime.block_on(serve(proxy, port)) {
        eprintln!("proxy failed: {e}");
        std::process::exit(1);
    }
}

async fn serve(proxy: Arc<Proxy>, port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        // Responses go out as headers + body; without NODELAY a kept-alive client waits ~40 ms for the
        // body (the skeleton's own Nagle stall).
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(proxy.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    // Flask's jsonify ends the body with a line break; so do we.
    respond(status, "application/json", format!("{body}\n"))
}

fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

async fn handle(
    proxy: Arc<Proxy>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = (req.method().clone(), req.uri().path().to_string());
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Ok(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large.",
            ));
        }
    };
    let response = match (&route.0, route.1.as_str()) {
        (&Method::POST, "/init") => init(&proxy, &body).await,
        (&Method::POST, "/run") => run(&proxy, &body).await,
        _ => error_response(StatusCode::NOT_FOUND, "Not found."),
    };
    Ok(response)
}

/// Writes `text` (a line break added when missing) and flushes, so Docker has the lines before the
/// response leaves.
fn write_stream(mut out: impl Write, text: &str) {
    if text.is_empty() {
        return;
    }
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

fn write_sentinels() {
    write_stream(std::io::stdout().lock(), SENTINEL);
    write_stream(std::io::stderr().lock(), SENTINEL);
}

async fn init(proxy: &Proxy, body: &[u8]) -> Response<Full<Bytes>> {
    {
        let state = proxy.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.initialized {
            write_stream(std::io::stderr().lock(), ERR_REINIT);
            return error_response(StatusCode::FORBIDDEN, ERR_REINIT);
        }
    }
    let message: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let value = message.get("value").cloned().unwrap_or(Value::Null);
    let code = value.get("code").and_then(Value::as_str).map(str::to_owned);
    let binary = value
        .get("binary")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let env = match value.get("env") {
        Some(Value::Object(env)) => env
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let action_dir = proxy.action_dir.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&action_dir, code, binary)).await;
    match prepared {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            write_stream(std::io::stderr().lock(), &reason);
            write_sentinels();
            return error_response(StatusCode::BAD_GATEWAY, ERR_NO_BINARY);
        }
        Err(e) => {
            write_stream(std::io::stderr().lock(), &format!("init task failed: {e}"));
            write_sentinels();
            return error_response(StatusCode::BAD_GATEWAY, ERR_NO_BINARY);
        }
    }
    let mut state = proxy.state.lock().unwrap_or_else(|e| e.into_inner());
    if state.initialized {
        // A concurrent init won the race.
        write_stream(std::io::stderr().lock(), ERR_REINIT);
        return error_response(StatusCode::FORBIDDEN, ERR_REINIT);
    }
    state.initialized = true;
    state.env = env;
    respond(StatusCode::OK, "text/html; charset=utf-8", "OK")
}

/// Puts the action's code in place: a zip is unpacked into the action directory, anything else binary
/// becomes `exec`, text becomes `exec` as is (a script with a `#!` line). Without code, an `exec` baked
/// into the image is used.
fn prepare(action_dir: &Path, code: Option<String>, binary: bool) -> Result<(), String> {
    let exec = action_dir.join("exec");
    if let Some(code) = code {
        std::fs::create_dir_all(action_dir)
            .map_err(|e| format!("cannot create {}: {e}", action_dir.display()))?;
        let bytes = if binary {
            let cleaned: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|e| format!("the code is not valid base64: {e}"))?
        } else {
            code.into_bytes()
        };
        if binary && bytes.starts_with(b"PK\x03\x04") {
            unzip(action_dir, &bytes)?;
        } else {
            write_file(&exec, &bytes)?;
        }
        let mut permissions = std::fs::metadata(&exec)
            .map_err(|e| format!("the action has no exec: {e}"))?
            .permissions();
        permissions.set_mode(0o755);
        std::fs::set_permissions(&exec, permissions)
            .map_err(|e| format!("cannot make exec executable: {e}"))?;
    }
    match std::fs::metadata(&exec) {
        Ok(meta) if meta.is_file() => Ok(()),
        _ => Err(format!("{} is missing", exec.display())),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    // Write to a temporary name and rename, so a run never executes a half-written file ("text file
    // busy" included).
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes)
        .map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn unzip(action_dir: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the code is not a valid zip: {e}"))?;
    let mut budget = MAX_UNZIPPED_BYTES;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("bad zip entry: {e}"))?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(format!(
                "zip entry {} escapes the action directory",
                entry.name()
            ));
        };
        let target = action_dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut contents = Vec::new();
        let read = (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut contents)
            .map_err(|e| format!("cannot unpack {}: {e}", target.display()))?;
        if read as u64 > budget {
            return Err(format!(
                "the zip unpacks to more than {MAX_UNZIPPED_BYTES} bytes"
            ));
        }
        budget -= read as u64;
        write_file(&target, &contents)?;
        if let Some(mode) = entry.unix_mode() {
            let _ =
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777));
        }
    }
    Ok(())
}

async fn run(proxy: &Proxy, body: &[u8]) -> Response<Full<Bytes>> {
    let message: Value = match serde_json::from_slice(body) {
        Ok(message) => message,
        Err(_) => return error_response(StatusCode::BAD_REQUEST, "Bad request."),
    };
    let args = match message.get("value") {
        None | Some(Value::Null) => json!({}),
        Some(value @ (Value::Object(_) | Value::Array(_))) => value.clone(),
        Some(_) => {
            write_sentinels();
            return error_response(StatusCode::NOT_FOUND, ERR_BAD_ARGS);
        }
    };
    let exec = proxy.exec_path();
    if !exec.is_file() {
        write_stream(
            std::io::stderr().lock(),
            &format!("{} is missing", exec.display()),
        );
        write_sentinels();
        return error_response(StatusCode::BAD_GATEWAY, ERR_NO_BINARY);
    }
    let init_env = proxy
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .env
        .clone();
    let args = args.to_string();
    let mut command = tokio::process::Command::new(&exec);
    command.current_dir(&proxy.action_dir);
    if args.len() <= MAX_ARG_STRLEN {
        command.arg(&args);
    }
    command.envs(&init_env);
    if let Value::Object(fields) = &message {
        for (key, value) in fields {
            if let (true, Value::String(value)) = (key != "value", value) {
                command.env(format!("__OW_{}", key.to_uppercase()), value);
            }
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            write_stream(
                std::io::stderr().lock(),
                &format!("cannot run {}: {e}", exec.display()),
            );
            write_sentinels();
            return error_response(StatusCode::BAD_GATEWAY, ERR_NOT_DICT);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // The skeleton always offers the parameters on stdin; an action that does not read them closes
        // the pipe, which is fine.
        tokio::spawn(async move {
            let _ = stdin.write_all(args.as_bytes()).await;
        });
    }
    let output = match child.wait_with_output().await {
        Ok(output) => output,
        Err(e) => {
            write_stream(
                std::io::stderr().lock(),
                &format!("cannot wait for {}: {e}", exec.display()),
            );
            write_sentinels();
            return error_response(StatusCode::BAD_GATEWAY, ERR_NOT_DICT);
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let trimmed = stdout.trim();
    let (rest, last) = match trimmed.rfind('\n') {
        Some(at) => (&trimmed[..at], trimmed[at + 1..].trim()),
        None => ("", trimmed),
    };
    write_stream(std::io::stdout().lock(), rest);
    write_stream(std::io::stderr().lock(), &stderr);
    if output.status.signal() == Some(9) {
        // Killed outright, almost always by the OOM killer: die with the action so the invoker sees a
        // dropped connection and asks Docker whether the container ran out of memory.
        write_stream(
            std::io::stderr().lock(),
            "The action was killed (SIGKILL); the proxy exits.",
        );
        std::process::exit(137);
    }
    let result = serde_json::from_str::<Value>(last)
        .ok()
        .filter(|v| v.is_object() || v.is_array());
    let response = match result {
        Some(result) => json_response(StatusCode::OK, &result),
        None => {
            write_stream(std::io::stdout().lock(), last);
            error_response(StatusCode::BAD_GATEWAY, ERR_NOT_DICT)
        }
    };
    write_sentinels();
    response
}
