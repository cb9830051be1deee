//! The CouchDB stores: action documents and attachments from the entities database, the namespace
//! blacklist from the subjects database, activation records to the activations database in
//! `_bulk_docs` batches (docs/protocol.md §7, §8).
//!
//! HTTP/1.1 through a hyper 1 client, basic auth on every request, each path segment URL-encoded on
//! its own (`guest/hello` → `guest%2Fhello`), as OpenWhisk's `CouchDbRestClient` does. Works against
//! CouchDB and pouchdb-server. Where to connect is [`CouchDbConfig`].

mod config;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use factory::Code;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use self::config::{
    CouchDbConfig, DEFAULT_ACTIVATION_DB, DEFAULT_AUTH_DB, DEFAULT_COUCHDB_PORT, DEFAULT_ENTITY_DB,
};

use super::{ActivationQuery, ActivationStore, EntityStore, StoreError};
use crate::document::{ActionDocument, Exec, PreparedCode, prepare_code};
use crate::record::{ActivationDocument, WhiskActivation};

/// Largest document or view response read: the 48 MB exec limit plus room. Bounds what a
/// misbehaving database can make us buffer.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Time one request may take, so that a hung database cannot hold an activation forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Most activation records per `_bulk_docs` request (OpenWhisk's batcher).
pub const MAX_BATCH: usize = 500;
/// Most `_bulk_docs` requests in flight (`max-connections / 2`).
pub const MAX_IN_FLIGHT_BATCHES: usize = 64;
/// Tries of one batch (`activation-store.retry-config.max-tries`).
pub const BATCH_TRIES: u32 = 3;
/// First retry delay, doubled per try.
const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);
/// Records waiting for the batcher; beyond this `store` waits, which bounds memory under a slow
/// database.
const QUEUE_DEPTH: usize = 16 * MAX_BATCH;
/// Most rows scanned by a list request; lists are per namespace and this bounds one request's cost.
pub const MAX_SCAN_ROWS: usize = 10_000;
/// Characters of an error body kept in [`StoreError::Status`].
const ERROR_BODY_CHARS: usize = 512;

/// Percent-encodes one path segment (everything but unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-encodes a query value.
fn encode_query(value: &str) -> String {
    encode_segment(value)
}

/// One response: status and body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Response {
    fn json(&self) -> Result<Value, StoreError> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    fn error(&self) -> StoreError {
        let text = String::from_utf8_lossy(&self.body);
        StoreError::Status {
            status: self.status.as_u16(),
            body: text.chars().take(ERROR_BODY_CHARS).collect(),
        }
    }
}

/// A small CouchDB HTTP client: base address, basic auth, segment-wise encoded paths.
#[derive(Clone)]
pub struct CouchClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    auth: Option<HeaderValue>,
}

impl std::fmt::Debug for CouchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouchClient")
            .field("base", &self.base)
            .finish()
    }
}

impl CouchClient {
    /// A client for `http://host:port` with basic auth when `username` is not empty.
    pub fn new(config: &CouchDbConfig) -> Result<Self, StoreError> {
        if config.protocol != "http" {
            return Err(StoreError::Config(format!(
                "CouchDB protocol {:?} is not supported (only http)",
                config.protocol
            )));
        }
        let auth = if config.username.is_empty() {
            None
        } else {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", config.username, config.password));
            Some(
                HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| StoreError::Config("unusable CouchDB credentials".into()))?,
            )
        };
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{}:{}", config.host, config.port),
            auth,
        })
    }

    /// Sends one request. `segments` are encoded one by one and joined with `/`; `query` is appended
    /// as is (values already encoded).
    pub async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<Response, StoreError> {
        let mut uri = self.base.clone();
        for segment in segments {
            uri.push('/');
            uri.push_str(&encode_segment(segment));
        }
        if segments.is_empty() {
            uri.push('/');
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(ACCEPT, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|error| StoreError::Transport(format!("building request {uri}: {error}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| StoreError::Transport(format!("{uri}: {error}")))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<http_body_util::LengthLimitError>() {
                        StoreError::TooLarge {
                            what: "store response",
                            limit: MAX_RESPONSE_BYTES,
                        }
                    } else {
                        StoreError::Transport(format!("{uri}: {error}"))
                    }
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                StoreError::Transport(format!("{uri}: no answer within {REQUEST_TIMEOUT:?}"))
            })?
    }

    /// `GET` a JSON document; 404 → [`StoreError::NotFound`].
    pub async fn get_json(&self, segments: &[&str], query: &str) -> Result<Value, StoreError> {
        let response = self
            .request(Method::GET, segments, query, None, None)
            .await?;
        match response.status {
            StatusCode::OK => response.json(),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound),
            _ => Err(response.error()),
        }
    }

    /// `PUT` a JSON value; returns the new revision. 409 → [`StoreError::Conflict`].
    pub async fn put_json(&self, segments: &[&str], value: &Value) -> Result<String, StoreError> {
        let body = Bytes::from(serde_json::to_vec(value)?);
        let response = self
            .request(
                Method::PUT,
                segments,
                "",
                Some("application/json"),
                Some(body),
            )
            .await?;
        revision_of(response)
    }

    /// Creates database `db` (an existing one is fine).
    pub async fn ensure_db(&self, db: &str) -> Result<(), StoreError> {
        let response = self.request(Method::PUT, &[db], "", None, None).await?;
        match response.status {
            StatusCode::CREATED | StatusCode::ACCEPTED | StatusCode::PRECONDITION_FAILED => Ok(()),
            StatusCode::OK => Ok(()),
            _ => Err(response.error()),
        }
    }
}

fn revision_of(response: Response) -> Result<String, StoreError> {
    match response.status {
        StatusCode::OK | StatusCode::CREATED | StatusCode::ACCEPTED => {
            let value = response.json()?;
            value
                .get("rev")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| StoreError::Transport("write answer without rev".into()))
        }
        StatusCode::CONFLICT => Err(StoreError::Conflict),
        StatusCode::NOT_FOUND => Err(StoreError::NotFound),
        _ => Err(response.error()),
    }
}

/// `_all_docs` rows of ids starting with `<prefix>/`, with documents.
async fn scan_prefix(
    client: &CouchClient,
    db: &str,
    prefix: &str,
) -> Result<Vec<Value>, StoreError> {
    let start = format!("\"{prefix}/\"");
    let end = format!("\"{prefix}/\u{fff0}\"");
    let query = format!(
        "startkey={}&endkey={}&include_docs=true&limit={MAX_SCAN_ROWS}",
        encode_query(&start),
        encode_query(&end)
    );
    let value = client.get_json(&[db, "_all_docs"], &query).await?;
    Ok(value
        .get("rows")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .filter_map(|row| row.get("doc").cloned())
                .collect()
        })
        .unwrap_or_default())
}

// ------------------------------------------------------------------------------------------------
// Entity store

/// Action documents from CouchDB's entities database; the blacklist from the subjects database.
#[derive(Debug, Clone)]
pub struct CouchEntityStore {
    client: CouchClient,
    entity_db: String,
    auth_db: String,
}

impl CouchEntityStore {
    /// A store over `config`'s entities and subjects databases.
    pub fn new(config: &CouchDbConfig) -> Result<Self, StoreError> {
        Ok(Self {
            client: CouchClient::new(config)?,
            entity_db: config.entity_db.clone(),
            auth_db: config.auth_db.clone(),
        })
    }

    /// The HTTP client (for set-up and tests).
    pub fn client(&self) -> &CouchClient {
        &self.client
    }
}

/// An attachment to upload with an action: its name, bytes and content type.
pub(crate) type Upload = (String, Vec<u8>, String);

/// Readies `document` to be stored as an action, as both stores do before writing it: its `_id`
/// (returned), entity type and `updated` set, and `code` put into its exec ([`attach_code`]), with
/// the attachment to upload, if any.
pub(crate) fn prepare_action(
    document: &mut ActionDocument,
    code: Option<Code>,
) -> (String, Option<Upload>) {
    let id = document.doc_id();
    document.id = Some(id.clone());
    document.entity_type = Some(crate::document::ACTION_ENTITY_TYPE.to_string());
    document.updated = super::now_millis();
    let upload = attach_code(document, code);
    (id, upload)
}

/// Puts `code` into the document's exec (as the prepared reference) and returns the attachment to
/// upload, if any.
fn attach_code(document: &mut ActionDocument, code: Option<Code>) -> Option<Upload> {
    let code = code?;
    let binary = matches!(code, Code::Binary(_));
    let (reference, upload) = match prepare_code(&code) {
        PreparedCode::Mem(reference) => (reference, None),
        PreparedCode::Attachment {
            reference,
            name,
            bytes,
        } => {
            let content_type = reference.attachment_type.clone();
            (reference, Some((name, bytes, content_type)))
        }
    };
    let source = crate::document::CodeSource::Attachment(reference);
    match &mut document.exec {
        Exec::Code {
            code, binary: flag, ..
        } => {
            *code = source;
            *flag = binary;
        }
        Exec::Blackbox {
            code, binary: flag, ..
        } => {
            *code = Some(source);
            *flag = binary;
        }
        Exec::Sequence { .. } => return None,
    }
    upload
}

#[async_trait]
impl EntityStore for CouchEntityStore {
    async fn get_action(
        &self,
        id: &str,
        revision: Option<&str>,
    ) -> Result<ActionDocument, StoreError> {
        let value = self.client.get_json(&[&self.entity_db, id], "").await?;
        super::action_at_revision(value, revision)
    }

    async fn get_attachment(
        &self,
        id: &str,
        name: &str,
        _revision: Option<&str>,
    ) -> Result<Vec<u8>, StoreError> {
        let response = self
            .client
            .request(Method::GET, &[&self.entity_db, id, name], "", None, None)
            .await?;
        match response.status {
            StatusCode::OK => Ok(response.body.to_vec()),
            // A missing attachment of a present document is a broken action, not a missing one.
            _ => Err(response.error()),
        }
    }

    async fn put_action(
        &self,
        mut document: ActionDocument,
        code: Option<Code>,
    ) -> Result<ActionDocument, StoreError> {
        let (id, upload) = prepare_action(&mut document, code);
        // Attachments of the previous revision are replaced, not carried over.
        document.attachments = None;
        let mut value = serde_json::to_value(&document)?;
        if let Value::Object(map) = &mut value {
            map.remove("_attachments");
        }
        let mut rev = self
            .client
            .put_json(&[&self.entity_db, &id], &value)
            .await?;
        if let Some((name, bytes, content_type)) = upload {
            let response = self
                .client
                .request(
                    Method::PUT,
                    &[&self.entity_db, &id, &name],
                    &format!("rev={}", encode_query(&rev)),
                    Some(&content_type),
                    Some(Bytes::from(bytes)),
                )
                .await?;
            rev = revision_of(response)?;
        }
        self.get_action(&id, Some(&rev)).await
    }

    async fn delete_action(&self, id: &str, revision: Option<&str>) -> Result<(), StoreError> {
        let rev = match revision {
            Some(rev) => rev.to_string(),
            None => self
                .client
                .get_json(&[&self.entity_db, id], "")
                .await?
                .get("_rev")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        let response = self
            .client
            .request(
                Method::DELETE,
                &[&self.entity_db, id],
                &format!("rev={}", encode_query(&rev)),
                None,
                None,
            )
            .await?;
        revision_of(response).map(|_| ())
    }

    async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<ActionDocument>, StoreError> {
        let documents = scan_prefix(&self.client, &self.entity_db, namespace).await?;
        Ok(documents
            .into_iter()
            .filter(|doc| doc.get("namespace").and_then(Value::as_str) == Some(namespace))
            .filter_map(|doc| ActionDocument::from_value(doc).ok())
            .skip(skip)
            .take(limit)
            .collect())
    }

    async fn blocked_namespaces(&self) -> Result<BTreeSet<String>, StoreError> {
        let value = self
            .client
            .get_json(
                &[
                    &self.auth_db,
                    "_design",
                    "namespaceThrottlings",
                    "_view",
                    "blockedNamespaces",
                ],
                "reduce=false&descending=true&stale=update_after",
            )
            .await?;
        Ok(value
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row.get("key").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }
}

// ------------------------------------------------------------------------------------------------
// Activation store

/// One record's document as JSON, and who waits for its write.
type Pending = (Vec<u8>, oneshot::Sender<Result<(), StoreError>>);

/// Activation records in CouchDB's activations database, written in `_bulk_docs` batches.
///
/// A background batcher owned by the store collects up to [`MAX_BATCH`] records, keeps up to
/// [`MAX_IN_FLIGHT_BATCHES`] requests in flight and tries each batch [`BATCH_TRIES`] times; it ends
/// when the store is dropped, after writing what was queued.
#[derive(Debug, Clone)]
pub struct CouchActivationStore {
    client: CouchClient,
    db: String,
    queue: mpsc::Sender<Pending>,
}

impl CouchActivationStore {
    /// A store over `config`'s activations database. Must be called inside a tokio runtime (it
    /// spawns the batcher); outside one it is a [`StoreError::Config`].
    pub fn new(config: &CouchDbConfig) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Config("the CouchDB activation store needs a tokio runtime".into())
        })?;
        let client = CouchClient::new(config)?;
        let db = config.activation_db.clone();
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        runtime.spawn(run_batcher(client.clone(), db.clone(), receiver));
        Ok(Self { client, db, queue })
    }
}

async fn run_batcher(client: CouchClient, db: String, mut receiver: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT_BATCHES));
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        super::take_ready(&mut receiver, &mut batch, MAX_BATCH);
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let db = db.clone();
        tokio::spawn(async move {
            let mut body =
                BulkDocs::with_capacity(batch.iter().map(|(doc, _)| doc.len() + 1).sum());
            let mut waiters = Vec::with_capacity(batch.len());
            for (doc, waiter) in batch {
                body.push_json(&doc);
                waiters.push(waiter);
            }
            let results = write_batch(&client, &db, body).await;
            drop(permit);
            match results {
                Ok(results) => {
                    for (waiter, result) in waiters.into_iter().zip(results) {
                        let _ = waiter.send(result);
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    for waiter in waiters {
                        let _ = waiter.send(Err(StoreError::Transport(message.clone())));
                    }
                }
            }
        });
    }
}

/// A `_bulk_docs` request body (`{"docs":[...]}`), written one document at a time.
#[derive(Debug, Default)]
struct BulkDocs {
    bytes: Vec<u8>,
    count: usize,
}

impl BulkDocs {
    /// An empty body with room for `bytes` of documents.
    fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// What goes before the next document: the opening, or a comma.
    fn separator(&self) -> &'static [u8] {
        if self.count == 0 {
            b"{\"docs\":["
        } else {
            b","
        }
    }

    /// Appends one document already written as JSON.
    fn push_json(&mut self, doc: &[u8]) {
        self.bytes.extend_from_slice(self.separator());
        self.bytes.extend_from_slice(doc);
        self.count += 1;
    }

    /// Appends one document, which `write` writes as JSON at the end of the buffer it is given; on
    /// its error the body is left as it was.
    fn push<E>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(self.separator());
        match write(&mut self.bytes) {
            Ok(()) => {
                self.count += 1;
                Ok(())
            }
            Err(error) => {
                self.bytes.truncate(start);
                Err(error)
            }
        }
    }

    /// Documents in the body.
    fn count(&self) -> usize {
        self.count
    }

    /// The finished body.
    fn finish(mut self) -> Bytes {
        if self.count == 0 {
            self.bytes.extend_from_slice(self.separator());
        }
        self.bytes.extend_from_slice(b"]}");
        Bytes::from(self.bytes)
    }
}

/// Posts one batch, retrying transport failures and 5xx answers; per-document results in order.
async fn write_batch(
    client: &CouchClient,
    db: &str,
    docs: BulkDocs,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let count = docs.count();
    let body = docs.finish();
    let mut last_error = StoreError::Transport("no attempt".into());
    for attempt in 0..BATCH_TRIES {
        if attempt > 0 {
            tokio::time::sleep(RETRY_BASE_DELAY * 2u32.pow(attempt - 1)).await;
        }
        let response = match client
            .request(
                Method::POST,
                &[db, "_bulk_docs"],
                "",
                Some("application/json"),
                Some(body.clone()),
            )
            .await
        {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%error, attempt, "activation batch write failed");
                last_error = error;
                continue;
            }
        };
        if response.status.is_server_error() {
            last_error = response.error();
            tracing::warn!(error = %last_error, attempt, "activation batch write failed");
            continue;
        }
        if !response.status.is_success() {
            return Err(response.error());
        }
        let rows: Vec<Value> = serde_json::from_slice(&response.body)?;
        let mut results: Vec<Result<(), StoreError>> = rows
            .iter()
            .map(|row| match row.get("error").and_then(Value::as_str) {
                None => Ok(()),
                // Activation ids are unique: a conflict on a retry means an earlier attempt that
                // looked failed (a lost answer) did write the record.
                Some("conflict") if attempt > 0 => Ok(()),
                Some("conflict") => Err(StoreError::Conflict),
                Some(error) => Err(StoreError::Status {
                    status: 0,
                    body: format!(
                        "{error}: {}",
                        row.get("reason").and_then(Value::as_str).unwrap_or("")
                    ),
                }),
            })
            .collect();
        results.resize_with(count, || {
            Err(StoreError::Transport("no result for document".into()))
        });
        return Ok(results);
    }
    Err(last_error)
}

#[async_trait]
impl ActivationStore for CouchActivationStore {
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        let mut document = Vec::new();
        activation.write_document(std::time::SystemTime::now(), &mut document)?;
        let (sender, receiver) = oneshot::channel();
        self.queue
            .send((document, sender))
            .await
            .map_err(|_| StoreError::Transport("activation batcher stopped".into()))?;
        receiver
            .await
            .map_err(|_| StoreError::Transport("activation batcher stopped".into()))?
    }

    async fn store_batch(&self, activations: &[WhiskActivation]) -> Vec<Result<(), StoreError>> {
        let now = std::time::SystemTime::now();
        // Every document written straight into one request body (no copy of a record, no
        // `serde_json::Value` in between); each record's place in the batch, or why it has none.
        let mut body = BulkDocs::default();
        let places: Vec<Result<usize, StoreError>> = activations
            .iter()
            .map(|activation| {
                body.push(|out| activation.write_document(now, out))?;
                Ok(body.count() - 1)
            })
            .collect();
        let count = body.count();
        let mut written: Vec<Option<Result<(), StoreError>>> = if count == 0 {
            Vec::new()
        } else {
            match write_batch(&self.client, &self.db, body).await {
                Ok(results) => results.into_iter().map(Some).collect(),
                Err(error) => (0..count).map(|_| Some(Err(error.shared_copy()))).collect(),
            }
        };
        places
            .into_iter()
            .map(|place| {
                let index = place?;
                written
                    .get_mut(index)
                    .and_then(Option::take)
                    .unwrap_or_else(|| Err(StoreError::Transport("no result for document".into())))
            })
            .collect()
    }

    async fn get(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<WhiskActivation, StoreError> {
        let id = format!("{namespace}/{activation_id}");
        let value = self.client.get_json(&[&self.db, &id], "").await?;
        let document: ActivationDocument = serde_json::from_value(value)?;
        Ok(document.activation)
    }

    async fn list(&self, query: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError> {
        let documents = scan_prefix(&self.client, &self.db, &query.namespace).await?;
        let activations = documents
            .into_iter()
            .filter(|doc| doc.get("entityType").and_then(Value::as_str) == Some("activation"))
            .filter_map(|doc| serde_json::from_value::<ActivationDocument>(doc).ok())
            .map(|document| document.activation)
            .collect();
        Ok(query.apply(activations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_segments_are_encoded_one_by_one() {
        assert_eq!(encode_segment("guest/hello"), "guest%2Fhello");
        assert_eq!(encode_segment("whisk.system"), "whisk.system");
        assert_eq!(encode_segment("a b+c"), "a%20b%2Bc");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn test_bulk_docs_body_is_json_and_a_failed_write_leaves_no_trace() {
        assert_eq!(&BulkDocs::default().finish()[..], br#"{"docs":[]}"#);
        let mut body = BulkDocs::with_capacity(16);
        body.push_json(br#"{"a":1}"#);
        let failed = body.push(|out| {
            out.extend_from_slice(b"{\"half");
            Err("cannot")
        });
        assert_eq!(failed, Err("cannot"));
        body.push(|out| {
            out.extend_from_slice(br#"{"b":2}"#);
            Ok::<_, &str>(())
        })
        .unwrap();
        assert_eq!(body.count(), 2);
        assert_eq!(&body.finish()[..], br#"{"docs":[{"a":1},{"b":2}]}"#);
    }

    #[test]
    fn test_activation_store_needs_a_runtime() {
        assert!(matches!(
            CouchActivationStore::new(&CouchDbConfig::default()),
            Err(StoreError::Config(_))
        ));
    }

    #[test]
    fn test_https_is_refused() {
        let config = CouchDbConfig {
            protocol: "https".into(),
            ..CouchDbConfig::default()
        };
        assert!(matches!(
            CouchClient::new(&config),
            Err(StoreError::Config(_))
        ));
    }
}
