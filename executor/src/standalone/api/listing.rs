//! Listing a collection of non-action entities (packages, triggers, rules) as the controller's
//! list routes answer: the documents of the namespace read from the store, then either their count
//! (`count=true`) or a page of their summaries, most recently updated first.

use hyper::{Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::State;
use super::request::{Call, Reply, store_error};
use crate::standalone::http::{ApiError, ResponseBody, json_response};
use crate::standalone::validate::ListQuery;

/// The fields of an entity document a list entry shows unless the entity shows more (the
/// `triggers` view's; the fields every entity has, `WhiskEntity`'s).
const SUMMARY_FIELDS: &[&str] = &[
    "namespace",
    "name",
    "version",
    "publish",
    "annotations",
    "updated",
];

/// An entity as a list shows it.
pub(super) trait Listed: Serialize + DeserializeOwned {
    /// Its collection, as its routes and its count name it (`packages`, `triggers`, `rules`).
    const COLLECTION: &'static str;
    /// The `entityType` of its documents.
    const ENTITY_TYPE: &'static str;

    /// When it was last written (epoch milliseconds), the list's order (newest first), then its
    /// name, the order among entities written in the same millisecond.
    fn order(&self) -> (u64, &str);

    /// Its list entry: [`summary_fields`] unless the entity shows more.
    fn summary(&self) -> Value {
        Value::Object(summary_fields(self))
    }
}

/// The fields every entity's list entry shows (`namespace`, `name`, `version`, `publish`,
/// `annotations`, `updated`), as its document stores them.
pub(super) fn summary_fields<T: Serialize + ?Sized>(entity: &T) -> Map<String, Value> {
    match serde_json::to_value(entity) {
        Ok(Value::Object(document)) => document
            .into_iter()
            .filter(|(key, _)| SUMMARY_FIELDS.contains(&key.as_str()))
            .collect(),
        Ok(_) | Err(_) => {
            tracing::error!("entity document not serialisable as an object");
            Map::new()
        }
    }
}

/// The list route of a collection: its query read, then the documents of the namespace `ns`
/// answered as [`respond`] does.
pub(super) async fn list<T: Listed>(state: &State, call: &Call, ns: &str) -> Reply {
    list_where(state, call, ns, |_: &T| true).await
}

/// [`list`] of the documents `keep` keeps.
pub(super) async fn list_where<T: Listed>(
    state: &State,
    call: &Call,
    ns: &str,
    keep: impl Fn(&T) -> bool,
) -> Reply {
    let query = ListQuery::parse(&call.query, T::COLLECTION)?;
    let mut entities: Vec<T> = documents(state, T::ENTITY_TYPE, ns).await?;
    entities.retain(keep);
    Ok(respond(T::COLLECTION, &query, entities))
}

/// The documents of `entity_type` in namespace `ns` that read as `T` (others are skipped: a list
/// answers with what it can show, as the controller's views do).
async fn documents<T: DeserializeOwned>(
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

/// The answer to a list of `collection`: `{"<collection>": n}`
/// past `skip` for `count=true`, else the page `skip`/`limit` of the summaries, newest first.
fn respond<T: Listed>(
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
        let ((a_updated, a_name), (b_updated, b_name)) = (a.order(), b.order());
        b_updated.cmp(&a_updated).then_with(|| a_name.cmp(b_name))
    });
    let page: Vec<Value> = entities
        .iter()
        .skip(query.skip)
        .take(query.limit)
        .map(Listed::summary)
        .collect();
    json_response(StatusCode::OK, &Value::Array(page))
}
