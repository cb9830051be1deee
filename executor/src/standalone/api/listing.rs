//! Listing a collection of non-action entities (packages, triggers, rules) as the controller's
//! list routes answer: the documents of the namespace read from the store, then either their count
//! (`count=true`) or a page of their summaries, most recently updated first.

use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::State;
use super::request::store_error;
use crate::standalone::http::{ApiError, ResponseBody, json_response};
use crate::standalone::validate::ListQuery;

/// An entity as a list shows it.
pub(super) trait Listed {
    /// When it was last written (epoch milliseconds): the list's order, newest first.
    fn updated(&self) -> u64;
    /// Its name: the order among entities written in the same millisecond.
    fn name(&self) -> &str;
    /// Its list entry.
    fn summary(&self) -> Value;
}

/// The documents of `entity_type` in namespace `ns` that read as `T` (others are skipped: a list
/// answers with what it can show, as the controller's views do).
pub(super) async fn documents<T: DeserializeOwned>(
    state: &State,
    entity_type: &str,
    ns: &str,
) -> Result<Vec<T>, ApiError> {
    let values = state
        .backend
        .list_entities(entity_type, ns)
        .await
        .map_err(store_error)?;
    Ok(values
        .into_iter()
        .filter_map(|value| serde_json::from_value(value).ok())
        .collect())
}

/// The answer to a list of `collection` (`packages`, `triggers`, `rules`): `{"<collection>": n}`
/// past `skip` for `count=true`, else the page `skip`/`limit` of the summaries, newest first.
pub(super) fn respond<T: Listed>(
    collection: &str,
    query: &ListQuery,
    mut entities: Vec<T>,
) -> Response<ResponseBody> {
    if query.count {
        let mut count = serde_json::Map::new();
        count.insert(
            collection.to_string(),
            json!(entities.len().saturating_sub(query.skip)),
        );
        return json_response(StatusCode::OK, &Value::Object(count));
    }
    entities.sort_by(|a, b| {
        b.updated()
            .cmp(&a.updated())
            .then_with(|| a.name().cmp(b.name()))
    });
    let page: Vec<Value> = entities
        .iter()
        .skip(query.skip)
        .take(query.limit)
        .map(Listed::summary)
        .collect();
    json_response(StatusCode::OK, &Value::Array(page))
}
