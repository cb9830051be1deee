//! `.../triggers[/{name}]`: placeholder until the triggers routes land (answers the route-not-found 404
//! every unknown path gets).

use hyper::{Response, StatusCode};

use super::State;
use super::request::Call;
use crate::message::Identity;
use crate::standalone::http::{ApiError, ResponseBody, messages};

/// Routes `.../triggers[/{name}]`.
pub(super) async fn route(
    _state: &State,
    _call: &Call,
    _user: &Identity,
    _ns: &str,
    _rest: &[&str],
    _tid: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, messages::ROUTE_NOT_FOUND))
}
