//! The body of an action PUT (`WhiskActionPut`), read and checked in the controller's order: the
//! exec (kind, code, entry point; a sequence's components), parameters, annotations, version,
//! publish, deleted annotations and limits, each with OpenWhisk's status and message when it is
//! malformed or too large.

use factory::Code;
use hyper::StatusCode;
use serde_json::Value;

use super::kinds::KindSet;
use super::request::Call;
use super::resolve::ActionPath;
use crate::document::{self, CodeSource, Exec, KindResolver, Parameter};
use crate::limits::LimitRanges;
use crate::standalone::http::{ApiError, json_object_body, messages};
use crate::standalone::validate::{self, LimitsPut};

/// Annotations as read from a PUT, as the parameter list an entity stores them in.
pub(super) fn into_parameters(list: Vec<(String, Value)>) -> Vec<Parameter> {
    list.into_iter()
        .map(|(key, value)| Parameter::new(key, value))
        .collect()
}

/// The entity a PUT writes over (`None`: the PUT creates one). One that exists is a 409
/// (`resourceExists`) unless the PUT asked to `overwrite` it.
pub(super) fn replaced<T>(existing: Option<T>, overwrite: bool) -> Result<Option<T>, ApiError> {
    match existing {
        Some(_) if !overwrite => Err(ApiError::new(
            StatusCode::CONFLICT,
            messages::RESOURCE_EXISTS,
        )),
        existing => Ok(existing),
    }
}

/// A PUT body (`WhiskActionPut`): every field optional.
#[derive(Debug, Default)]
pub(super) struct ActionPut {
    pub(super) exec: Option<(Exec, Option<Code>)>,
    pub(super) parameters: Option<Vec<Parameter>>,
    pub(super) limits: Option<LimitsPut>,
    pub(super) version: Option<String>,
    pub(super) publish: Option<bool>,
    pub(super) annotations: Option<Vec<(String, Value)>>,
    pub(super) del_annotations: Option<Vec<String>>,
}

fn malformed(reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(messages::malformed_content(&reason.to_string()))
}

/// Reads a PUT body in the controller's order: the exec, parameters and annotations and their sizes
/// first (`LimitedWhiskEntityPut`, 413), then the rest, then the limits (400).
pub(super) fn parse_action_put(
    kinds: &KindSet,
    ranges: &LimitRanges,
    call: &Call,
) -> Result<ActionPut, ApiError> {
    let Some(body) = json_object_body(&call.headers, &call.body)? else {
        return Err(malformed("Object expected"));
    };
    let mut put = ActionPut::default();
    if let Some(exec) = body.get("exec").filter(|v| !v.is_null()) {
        put.exec = Some(parse_exec(kinds, exec)?);
    }
    if let Some(parameters) = body.get("parameters").filter(|v| !v.is_null()) {
        put.parameters = Some(parse_parameters(parameters)?);
    }
    if let Some(annotations) = body.get("annotations").filter(|v| !v.is_null()) {
        put.annotations = Some(
            parse_parameters(annotations)?
                .into_iter()
                .map(|p| (p.key, p.value))
                .collect(),
        );
    }
    if let Some((exec, _)) = &put.exec {
        let size = exec_size(exec);
        if size > validate::MAX_EXEC_BYTES {
            return Err(ApiError::too_big("exec", size, validate::MAX_EXEC_BYTES));
        }
    }
    if let Some(parameters) = &put.parameters {
        let pairs: Vec<(String, Value)> = parameters
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        validate::check_parameters_size("parameters", &pairs)?;
    }
    if let Some(annotations) = &put.annotations {
        validate::check_parameters_size("annotations", annotations)?;
    }
    if let Some(version) = body.get("version").filter(|v| !v.is_null()) {
        let text = version
            .as_str()
            .ok_or_else(|| malformed("version must be a string"))?;
        put.version =
            Some(semver(text).ok_or_else(|| malformed(format!("bad semantic version: {text}")))?);
    }
    if let Some(publish) = body.get("publish").filter(|v| !v.is_null()) {
        put.publish = Some(
            publish
                .as_bool()
                .ok_or_else(|| malformed("publish must be a boolean"))?,
        );
    }
    if let Some(del) = body.get("delAnnotations").filter(|v| !v.is_null()) {
        let names: Vec<String> = serde_json::from_value(del.clone())
            .map_err(|_| malformed("delAnnotations must be an array of strings"))?;
        put.del_annotations = Some(names);
    }
    if let Some(limits) = body.get("limits").filter(|v| !v.is_null()) {
        put.limits = Some(LimitsPut::parse(limits, ranges)?);
    }
    Ok(put)
}

/// `Exec.size`: the code's bytes plus the entry point's (and the image's, for blackbox).
fn exec_size(exec: &Exec) -> u64 {
    let code = |source: &CodeSource| match source {
        CodeSource::Inline(text) => text.len() as u64,
        CodeSource::Attachment(_) => 0,
    };
    match exec {
        Exec::Code {
            code: source, main, ..
        } => code(source) + main.as_ref().map_or(0, |m| m.len() as u64),
        Exec::Blackbox {
            image,
            code: source,
            main,
            ..
        } => {
            image.len() as u64
                + source.as_ref().map_or(0, code)
                + main.as_ref().map_or(0, |m| m.len() as u64)
        }
        Exec::Sequence { components } => components.iter().map(|c| c.len() as u64).sum(),
    }
}

/// Reads a PUT `exec` as `Exec.serdes.read` does; the kind must be one this server runs.
fn parse_exec(kinds: &KindSet, value: &Value) -> Result<(Exec, Option<Code>), ApiError> {
    let Value::Object(map) = value else {
        return Err(malformed("'kind' must be a string defined in 'exec'"));
    };
    let kind = match map.get("kind") {
        Some(Value::String(kind)) => kind.trim().to_ascii_lowercase(),
        _ => return Err(malformed("'kind' must be a string defined in 'exec'")),
    };
    let main = match map.get("main") {
        None | Some(Value::Null) => None,
        Some(Value::String(main)) => Some(main.clone()),
        Some(_) => {
            return Err(malformed(format!(
                "if defined, 'main' be a string in 'exec' for '{kind}' actions"
            )));
        }
    };
    match kind.as_str() {
        "sequence" => {
            let components = match map.get("components") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) => ActionPath::parse(text)
                            .map(|path| path.to_string())
                            .map_err(malformed),
                        _ => Err(malformed("fully qualified name malformed")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err(malformed("'components' must be an array")),
                None => {
                    return Err(malformed("'components' must be defined for sequence kind"));
                }
            };
            Ok((Exec::Sequence { components }, None))
        }
        "blackbox" => {
            let image = match map.get("image") {
                Some(Value::String(image)) if !image.trim().is_empty() => image.trim().to_string(),
                _ => {
                    return Err(malformed(
                        "'image' must be a string defined in 'exec' for 'blackbox' actions",
                    ));
                }
            };
            let code = match map.get("code") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) if text.trim().is_empty() => None,
                Some(Value::String(text)) => Some(text.clone()),
                Some(_) => {
                    return Err(malformed(
                        "'code' must be a string defined in 'exec' for 'blackbox' actions",
                    ));
                }
            };
            let binary = code.as_deref().is_some_and(document::is_base64);
            let decoded = code
                .as_deref()
                .map(|text| inline_code(text, binary))
                .transpose()?;
            Ok((
                Exec::Blackbox {
                    image,
                    code: code.map(CodeSource::Inline),
                    binary,
                    main,
                },
                decoded,
            ))
        }
        _ => {
            let Some(resolved) = kinds.resolve(&kind) else {
                return Err(malformed(kinds.invalid_runtime(&kind)));
            };
            let code = match map.get("code") {
                Some(Value::String(text)) => text.clone(),
                _ => {
                    return Err(malformed(format!(
                        "'code' must be a string or attachment object defined in 'exec' for '{kind}' actions"
                    )));
                }
            };
            let binary = document::is_base64(&code);
            let decoded = inline_code(&code, binary)?;
            Ok((
                Exec::Code {
                    kind: resolved,
                    code: CodeSource::Inline(code),
                    binary,
                    main,
                },
                Some(decoded),
            ))
        }
    }
}

fn inline_code(text: &str, binary: bool) -> Result<Code, ApiError> {
    document::decode_inline(text, binary).map_err(malformed)
}

/// Reads `[{"key","value","init"?}]` (parameters and annotations).
fn parse_parameters(value: &Value) -> Result<Vec<Parameter>, ApiError> {
    let Value::Array(items) = value else {
        return Err(malformed(
            "Expected JsArray as JsArray, but got a different type",
        ));
    };
    let mut out: Vec<Parameter> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(map) = item else {
            return Err(malformed(
                "parameter must be an object with 'key' and 'value'",
            ));
        };
        let key = match map.get("key") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            _ => return Err(malformed("parameter key must be a non-empty string")),
        };
        let value = map.get("value").cloned().unwrap_or(Value::Null);
        let init = match map.get("init") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(init)) => *init,
            Some(_) => return Err(malformed("parameter init must be a boolean")),
        };
        let mut parameter = Parameter::new(key, value);
        parameter.init = init;
        // A later duplicate key wins, as building OpenWhisk's parameter map does.
        out.retain(|p| p.key != parameter.key);
        out.push(parameter);
    }
    Ok(out)
}

/// A `major.minor.patch` version, normalised.
fn semver(text: &str) -> Option<String> {
    let parts: Vec<u64> = text
        .trim()
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major] => Some(format!("{major}.0.0")),
        [major, minor] => Some(format!("{major}.{minor}.0")),
        [major, minor, patch] => Some(format!("{major}.{minor}.{patch}")),
        _ => None,
    }
}

/// `version.upPatch`.
pub(super) fn up_patch(version: &str) -> String {
    match semver(version).as_deref().map(|v| {
        v.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    }) {
        Some(parts) if parts.len() == 3 => format!("{}.{}.{}", parts[0], parts[1], parts[2] + 1),
        _ => document::DEFAULT_VERSION.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_versions_bump_patch_on_update() {
        assert_eq!(up_patch("0.0.1"), "0.0.2");
        assert_eq!(semver("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(semver("x"), None);
    }
}
