//! Web actions (`/api/v1/web/{ns}/{package}/{name}[.ext]`): the HTTP request becomes the action's
//! parameters and its result becomes the HTTP response, as the controller's `WebActions.scala` does.

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Map, Value};

use super::http::{
    ApiError, ResponseBody, essence, is_json_family, json_response, media_type, messages,
};

/// The parameters the controller adds to a web action's input.
pub mod fields {
    /// The HTTP method, lower case.
    pub const METHOD: &str = "__ow_method";
    /// The request headers, names lower case.
    pub const HEADERS: &str = "__ow_headers";
    /// The path after the action name.
    pub const PATH: &str = "__ow_path";
    /// The authenticated caller's namespace, when the request carried valid credentials.
    pub const USER: &str = "__ow_user";
    /// The raw query (raw HTTP actions).
    pub const QUERY: &str = "__ow_query";
    /// The body when it is not a JSON object (or always, for raw HTTP actions).
    pub const BODY: &str = "__ow_body";
    /// Every reserved name; a request may not set them.
    pub const RESERVED: [&str; 6] = [METHOD, HEADERS, PATH, USER, QUERY, BODY];
}

/// How the result is turned into a response: the name's extension (`.http` when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// `statusCode`, `headers`, `body` of the result make the response.
    Http,
    /// The result as JSON.
    Json,
    /// `body` or `html` as `text/html`.
    Html,
    /// `body` or `svg` as `image/svg+xml`.
    Svg,
    /// `body` or `text` as text.
    Text,
}

impl Extension {
    /// Splits `name.ext` into the action name and the extension (`.http` when there is none), as
    /// `mediaTranscoderForName` does.
    pub fn split(name_with_extension: &str) -> (&str, Extension) {
        for (suffix, extension) in [
            (".http", Extension::Http),
            (".json", Extension::Json),
            (".html", Extension::Html),
            (".svg", Extension::Svg),
            (".text", Extension::Text),
        ] {
            if let Some(base) = name_with_extension.strip_suffix(suffix) {
                return (base, extension);
            }
        }
        (name_with_extension, Extension::Http)
    }
}

/// What a web request carries, before it becomes parameters.
#[derive(Debug, Clone)]
pub struct WebRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The path after the action name (`/a/b`, or empty).
    pub path: &'a str,
    /// The raw query string.
    pub raw_query: &'a str,
    /// The decoded query pairs.
    pub query: &'a [(String, String)],
    /// The body bytes.
    pub body: &'a [u8],
    /// The authenticated caller's namespace, if any.
    pub user: Option<&'a str>,
}

/// Builds the action's input from the request (`Context.toActionArgument`): `__ow_` metadata, then
/// query parameters, then body fields (last wins). `raw` is the `raw-http` annotation.
pub fn arguments(request: &WebRequest<'_>, raw: bool) -> Result<Map<String, Value>, ApiError> {
    let mut args = Map::new();
    args.insert(
        fields::METHOD.into(),
        Value::String(request.method.as_str().to_ascii_lowercase()),
    );
    let mut headers = Map::new();
    for (name, value) in request.headers {
        // Later values of a repeated header win, as converting Pekko's header list to a map does.
        headers.insert(
            name.as_str().to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into()),
        );
    }
    args.insert(fields::HEADERS.into(), Value::Object(headers));
    args.insert(fields::PATH.into(), Value::String(request.path.to_string()));
    if let Some(user) = request.user {
        args.insert(fields::USER.into(), Value::String(user.to_string()));
    }
    let body = body_value(request, raw)?;
    if raw {
        args.insert(
            fields::QUERY.into(),
            Value::String(request.raw_query.to_string()),
        );
        args.insert(
            fields::BODY.into(),
            body.unwrap_or_else(|| Value::String(String::new())),
        );
        return Ok(args);
    }
    let mut supplied: Vec<&str> = request.query.iter().map(|(k, _)| k.as_str()).collect();
    if let Some(Value::Object(map)) = &body {
        supplied.extend(map.keys().map(String::as_str));
    }
    if supplied.iter().any(|key| fields::RESERVED.contains(key)) {
        return Err(ApiError::bad_request(messages::PARAMETERS_NOT_ALLOWED));
    }
    for (key, value) in request.query {
        args.insert(key.clone(), Value::String(value.clone()));
    }
    match body {
        Some(Value::Object(map)) => args.extend(map),
        Some(other) => {
            args.insert(fields::BODY.into(), other);
        }
        None => {}
    }
    Ok(args)
}

/// The body as the controller passes it: JSON for JSON bodies (not raw), an object for forms (not
/// raw), base64 for binary and JSON-as-raw bodies, else the text.
fn body_value(request: &WebRequest<'_>, raw: bool) -> Result<Option<Value>, ApiError> {
    if request.body.is_empty() {
        return Ok(None);
    }
    let media =
        media_type(request.headers).unwrap_or_else(|| "application/octet-stream".to_string());
    if is_json_family(&media) && !raw {
        return serde_json::from_slice(request.body)
            .map(Some)
            .map_err(|error| {
                ApiError::bad_request(messages::malformed_content(&error.to_string()))
            });
    }
    if media == "application/x-www-form-urlencoded" && !raw {
        let form: Map<String, Value> = form_urlencoded::parse(request.body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Ok(Some(Value::Object(form)));
    }
    if is_binary(&media) || media == "application/json" {
        return Ok(Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(request.body),
        )));
    }
    Ok(Some(Value::String(
        String::from_utf8_lossy(request.body).into_owned(),
    )))
}

/// Whether Pekko treats a media type as binary (its entity is bytes, not text).
fn is_binary(media: &str) -> bool {
    let text_like = media.starts_with("text/")
        || is_json_family(media)
        || media.ends_with("+xml")
        || matches!(
            media,
            "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/xhtml+xml"
                | "message/http"
        );
    !text_like
}

/// Turns a successful (or application error) result into the response for `extension`
/// (`resultAsHttp`, `resultAsJson`, ...).
pub fn respond(extension: Extension, result: Value) -> Result<Response<ResponseBody>, ApiError> {
    match extension {
        Extension::Json => match result {
            Value::Object(_) | Value::Array(_) => Ok(json_response(StatusCode::OK, &result)),
            _ => Err(ApiError::bad_request(messages::invalid_media(
                "application/json",
            ))),
        },
        Extension::Html => match projected(result, "html") {
            Some(Value::String(html)) => Ok(body_response(
                StatusCode::OK,
                "text/html; charset=UTF-8",
                html.into(),
            )),
            _ => Err(ApiError::bad_request(messages::invalid_media("text/html"))),
        },
        Extension::Svg => match projected(result, "svg") {
            Some(Value::String(svg)) => {
                Ok(body_response(StatusCode::OK, "image/svg+xml", svg.into()))
            }
            _ => Err(ApiError::bad_request(messages::invalid_media(
                "image/svg+xml",
            ))),
        },
        Extension::Text => {
            let text = match result {
                Value::Object(mut map) => map.remove("body").or_else(|| map.remove("text")),
                other => Some(other),
            };
            match text {
                Some(Value::String(s)) => Ok(body_response(
                    StatusCode::OK,
                    "text/plain; charset=UTF-8",
                    s.into(),
                )),
                Some(value @ (Value::Object(_) | Value::Array(_))) => Ok(body_response(
                    StatusCode::OK,
                    "text/plain; charset=UTF-8",
                    serde_json::to_string_pretty(&value)
                        .unwrap_or_default()
                        .into(),
                )),
                Some(other) => Ok(body_response(
                    StatusCode::OK,
                    "text/plain; charset=UTF-8",
                    other.to_string().into(),
                )),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    messages::PROPERTY_NOT_FOUND,
                )),
            }
        }
        Extension::Http => http_result(result)
            .ok_or_else(|| ApiError::bad_request(messages::invalid_media("message/http")))?,
    }
}

/// `body` or the named field of an object result, the result itself otherwise.
fn projected(result: Value, field: &str) -> Option<Value> {
    match result {
        Value::Object(mut map) => map.remove("body").or_else(|| map.remove(field)),
        other => Some(other),
    }
}

fn body_response(status: StatusCode, content_type: &str, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// `.http`: `None` when the result is not a valid HTTP description (400 `invalidMedia`), an inner
/// error when its content type is unusable.
fn http_result(result: Value) -> Option<Result<Response<ResponseBody>, ApiError>> {
    let Value::Object(mut map) = result else {
        return None;
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    match map.remove("headers") {
        None => {}
        Some(Value::Object(entries)) => {
            for (name, value) in entries {
                header_values(&name, &value, &mut headers)?;
            }
        }
        Some(_) => return None,
    }
    let status = match map.remove("statusCode") {
        None => None,
        Some(Value::Number(n)) => Some(n.as_u64().and_then(|c| u16::try_from(c).ok())?),
        Some(Value::String(s)) => Some(s.trim().parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let status = match status {
        Some(code) => Some(StatusCode::from_u16(code).ok()?),
        None => None,
    };
    let content_type = headers
        .iter()
        .find(|(name, _)| *name == header::CONTENT_TYPE)
        .map(|(_, value)| value.to_str().unwrap_or("").to_string());
    headers.retain(|(name, _)| *name != header::CONTENT_TYPE);
    let with_headers = |mut response: Response<ResponseBody>| {
        for (name, value) in &headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        response
    };
    let response = match map.remove("body") {
        None | Some(Value::Null) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status.unwrap_or(StatusCode::NO_CONTENT);
            Ok(with_headers(response))
        }
        Some(Value::String(text)) if text.is_empty() => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status.unwrap_or(StatusCode::NO_CONTENT);
            Ok(with_headers(response))
        }
        Some(Value::String(text)) => {
            let media = content_type
                .clone()
                .unwrap_or_else(|| "text/html".to_string());
            let essence = essence(&media);
            if !essence.contains('/') {
                return Some(Err(ApiError::bad_request(
                    messages::HTTP_UNKNOWN_CONTENT_TYPE,
                )));
            }
            let decode = is_binary(&essence) || (is_json_family(&essence) && looks_base64(&text));
            let bytes = if decode {
                match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                    Ok(bytes) => Bytes::from(bytes),
                    Err(_) => {
                        return Some(Err(ApiError::bad_request(
                            messages::HTTP_CONTENT_TYPE_ERROR,
                        )));
                    }
                }
            } else {
                Bytes::from(text)
            };
            let content_type = if is_binary(&essence) || media.contains("charset") {
                media
            } else {
                format!("{media}; charset=UTF-8")
            };
            Ok(with_headers(body_response(
                status.unwrap_or(StatusCode::OK),
                &content_type,
                bytes,
            )))
        }
        Some(json) => {
            let media = content_type.unwrap_or_else(|| "application/json".to_string());
            let essence = essence(&media);
            if !is_json_family(&essence) {
                return Some(Err(ApiError::bad_request(
                    messages::HTTP_CONTENT_TYPE_ERROR,
                )));
            }
            let mut response = json_response(status.unwrap_or(StatusCode::OK), &json);
            if essence != "application/json"
                && let Ok(value) = HeaderValue::from_str(&format!("{essence}; charset=UTF-8"))
            {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            Ok(with_headers(response))
        }
    };
    Some(response)
}

fn header_values(
    name: &str,
    value: &Value,
    out: &mut Vec<(HeaderName, HeaderValue)>,
) -> Option<()> {
    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
    match value {
        Value::String(s) => out.push((name, HeaderValue::from_str(s).ok()?)),
        Value::Bool(b) => out.push((name, HeaderValue::from_str(&b.to_string()).ok()?)),
        Value::Number(n) => out.push((name, HeaderValue::from_str(&n.to_string()).ok()?)),
        Value::Array(values) => {
            for inner in values {
                header_values(name.as_str(), inner, out)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// OpenWhisk's `Exec.isBinaryCode`: non-empty, length a multiple of 4, base64 alphabet.
pub fn looks_base64(text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() || !t.len().is_multiple_of(4) {
        return false;
    }
    let bytes = t.as_bytes();
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    padding <= 2
        && bytes[..bytes.len() - padding]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    async fn body_of(response: Response<ResponseBody>) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn test_extension_split_defaults_to_http() {
        assert_eq!(Extension::split("hello.json"), ("hello", Extension::Json));
        assert_eq!(Extension::split("hello"), ("hello", Extension::Http));
        assert_eq!(Extension::split("a.b.http"), ("a.b", Extension::Http));
    }

    #[test]
    fn test_arguments_merge_metadata_query_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let query = vec![
            ("name".to_string(), "Ada".to_string()),
            ("x".to_string(), "q".to_string()),
        ];
        let request = WebRequest {
            method: &Method::POST,
            headers: &headers,
            path: "/p",
            raw_query: "name=Ada&x=q",
            query: &query,
            body: br#"{"x": 1}"#,
            user: None,
        };
        let args = arguments(&request, false).unwrap();
        assert_eq!(args["__ow_method"], "post");
        assert_eq!(args["__ow_path"], "/p");
        assert_eq!(args["__ow_headers"]["content-type"], "application/json");
        assert_eq!(args["name"], "Ada");
        assert_eq!(args["x"], 1);
        let raw = arguments(&request, true).unwrap();
        assert_eq!(raw["__ow_query"], "name=Ada&x=q");
        assert_eq!(
            raw["__ow_body"],
            base64::engine::general_purpose::STANDARD.encode(br#"{"x": 1}"#)
        );
        let reserved = vec![("__ow_method".to_string(), "get".to_string())];
        let request = WebRequest {
            query: &reserved,
            body: b"",
            ..request
        };
        assert_eq!(
            arguments(&request, false).unwrap_err().message,
            messages::PARAMETERS_NOT_ALLOWED
        );
    }

    #[tokio::test]
    async fn test_http_results_map_status_headers_body() {
        let response = respond(
            Extension::Http,
            json!({"statusCode": 201, "headers": {"x-a": "1", "content-type": "text/plain"}, "body": "hi"}),
        )
        .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["x-a"], "1");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=UTF-8"
        );
        assert_eq!(body_of(response).await, b"hi");
        let empty = respond(Extension::Http, json!({})).unwrap();
        assert_eq!(empty.status(), StatusCode::NO_CONTENT);
        let json = respond(Extension::Http, json!({"body": {"a": 1}})).unwrap();
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body_of(json).await, br#"{"a":1}"#);
        let png = respond(
            Extension::Http,
            json!({"headers": {"content-type": "image/png"}, "body": "AAEC"}),
        )
        .unwrap();
        assert_eq!(body_of(png).await, vec![0, 1, 2]);
        let bad = respond(Extension::Http, json!([1])).unwrap_err();
        assert_eq!(bad.message, "Response is not valid 'message/http'.");
        let bad = respond(Extension::Http, json!({"statusCode": "abc"})).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let bad_json = respond(Extension::Json, json!("text")).unwrap_err();
        assert_eq!(
            bad_json.message,
            "Response is not valid 'application/json'."
        );
    }
}
