//! The runtime's HTTP request bodies: what [`DockerContainer`](super::DockerContainer) posts to an
//! OpenWhisk runtime's `/init` and `/run`, in the form OpenWhisk's invoker sends them
//! (`ContainerProxy.initializeAndRun`, `WhiskAction.containerInitializer`, `Container.scala`).
//!
//! Kept apart from the container's lifecycle so that the exact form has one home and is checked
//! against OpenWhisk's own bodies (the `runtime/` fixtures). `docs/protocol.md` describes both.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::container::{Code, InitRequest, RunRequest};

/// The entry point a runtime calls when the action document names none (`exec.main` absent).
const DEFAULT_MAIN: &str = "main";

/// The `/init` body: `{"value": {name, main, binary, code?, env?}}`. `code` is the text, or the bytes
/// in standard base64 with `binary: true`; it is absent for a blackbox action without code. `env`
/// holds the init parameters and the activation's `__OW_` variables, every value a string.
pub fn init_body(init: &InitRequest) -> Value {
    let mut env = Map::new();
    for (key, value) in &init.env {
        env.insert(key.clone(), Value::String(value.clone()));
    }
    for (key, value) in init.context.env() {
        env.insert(key, Value::String(value));
    }
    let mut value = Map::new();
    value.insert("name".into(), Value::String(init.name.clone()));
    value.insert(
        "main".into(),
        Value::String(
            init.main
                .clone()
                .unwrap_or_else(|| DEFAULT_MAIN.to_string()),
        ),
    );
    let (binary, code) = match &init.code {
        Some(Code::Text(text)) => (false, Some(text.clone())),
        Some(Code::Binary(bytes)) => (
            true,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
        None => (false, None),
    };
    value.insert("binary".into(), Value::Bool(binary));
    if let Some(code) = code {
        value.insert("code".into(), Value::String(code));
    }
    if !env.is_empty() {
        value.insert("env".into(), Value::Object(env));
    }
    let mut body = Map::new();
    body.insert("value".into(), Value::Object(value));
    Value::Object(body)
}

/// The `/run` body: `{"value": params}` beside the activation context in lower case, unprefixed
/// (`api_key` only when the action may see it, `deadline` a string of epoch milliseconds).
pub fn run_body(run: &RunRequest) -> Value {
    let mut body = Map::new();
    body.insert("value".into(), run.params.clone());
    body.extend(run.context.run_fields());
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::container::ActivationContext;
    use crate::limits::Limits;

    /// An OpenWhisk fixture: the workspace keeps one copy, in the executor's test fixtures (their
    /// README says why and names each file's upstream source).
    fn fixture(path: &str) -> Value {
        let file = format!(
            "{}/../executor/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("fixture {file}: {error}"));
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("fixture {file}: {error}"))
    }

    fn text(value: &Value) -> String {
        value.as_str().expect("a string").to_string()
    }

    /// Story A4's inputs as OpenWhisk had them: the activation message, the action document, and
    /// the deadline the invoker computed for the call (`deadline` is recomputed per call, so the
    /// `/init` and `/run` of one activation carry different ones).
    fn a4_context(deadline_millis: u64) -> ActivationContext {
        let message = fixture("kafka/activation-message-with-init-args.json");
        let action = &message["action"];
        ActivationContext {
            activation_id: text(&message["activationId"]),
            namespace: text(&message["user"]["namespace"]["name"]),
            action_name: format!("/{}/{}", text(&action["path"]), text(&action["name"])),
            action_version: Some(text(&action["version"])),
            transaction_id: text(&message["transid"][0]),
            api_key: Some(text(&message["user"]["authkey"]["api_key"])),
            deadline: UNIX_EPOCH + Duration::from_millis(deadline_millis),
        }
    }

    /// The deadline (epoch ms) a runtime fixture carries.
    fn deadline_of(value: &Value) -> u64 {
        text(value).parse().expect("a deadline in epoch ms")
    }

    #[test]
    fn test_init_body_is_openwhisks_for_story_a4() {
        let expected = fixture("runtime/init-request.json");
        let message = fixture("kafka/activation-message-with-init-args.json");
        let document = fixture("couchdb/action-nodejs-inline.json");
        let init_arg = text(&message["initArgs"][0]);
        let init = InitRequest {
            name: text(&document["name"]),
            main: document["exec"]["main"].as_str().map(str::to_string),
            code: Some(Code::Text(text(&document["exec"]["code"]))),
            env: BTreeMap::from([(init_arg.clone(), text(&message["content"][&init_arg]))]),
            context: a4_context(deadline_of(&expected["value"]["env"]["__OW_DEADLINE"])),
            limits: Limits::default(),
        };
        assert_eq!(init_body(&init), expected);
    }

    #[test]
    fn test_run_body_is_openwhisks_for_story_a4() {
        let expected = fixture("runtime/run-request.json");
        let message = fixture("kafka/activation-message-with-init-args.json");
        let mut params = message["content"].clone();
        // The init parameter goes to `/init` only.
        params
            .as_object_mut()
            .expect("object content")
            .remove(&text(&message["initArgs"][0]));
        let run = RunRequest {
            params,
            context: a4_context(deadline_of(&expected["deadline"])),
            limits: Limits::default(),
        };
        assert_eq!(run_body(&run), expected);
    }

    #[test]
    fn test_binary_code_is_standard_base64_and_absent_code_is_left_out() {
        let mut context = a4_context(1);
        context.api_key = None;
        let mut init = InitRequest {
            name: "wc".into(),
            main: Some("count".into()),
            code: Some(Code::Binary(Arc::from(&b"\0asm\x01\0\0\0\xff"[..]))),
            env: BTreeMap::new(),
            context,
            limits: Limits::default(),
        };
        let value = &init_body(&init)["value"];
        assert_eq!(value["binary"], json!(true));
        assert_eq!(value["code"], json!("AGFzbQEAAAD/"));
        assert_eq!(value["main"], json!("count"));
        assert!(value["env"].get("__OW_API_KEY").is_none());
        init.code = None;
        let value = &init_body(&init)["value"];
        assert_eq!(value["binary"], json!(false));
        assert!(value.get("code").is_none());
    }

    #[test]
    fn test_run_body_passes_an_array_through_and_writes_a_missing_version_as_null() {
        let mut context = a4_context(1);
        context.action_version = None;
        context.api_key = None;
        let run = RunRequest {
            params: json!([1, "two"]),
            context,
            limits: Limits::default(),
        };
        let body = run_body(&run);
        assert_eq!(body["value"], json!([1, "two"]));
        assert_eq!(body["action_version"], Value::Null);
        assert!(body.get("api_key").is_none());
        assert_eq!(body["deadline"], json!("1"));
    }
}
