//! Dev-mode endpoints for the demo page: mint a UserSig for any user and list accounts. They
//! answer 404 unless the server runs in dev mode, because they hand out credentials.

use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use beckon_proto::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Validity of a dev UserSig.
const DEV_SIG_SECONDS: u64 = 24 * 3600;
/// Most accounts `/dev/users` lists.
const MAX_LISTED_USERS: usize = 200;

fn disabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"code": ErrorCode::AdminUnauthorized.as_u32(), "message": "dev mode is off on this server"})),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserSigQuery {
    #[serde(rename = "userID")]
    user_id: Option<String>,
}

/// `GET /dev/usersig?userID=alice` → `{SDKAppID, userID, userSig, expire}`.
pub(crate) async fn usersig(
    State(state): State<Arc<AppState>>,
    Query(query): Query<UserSigQuery>,
) -> Response {
    if !state.config.dev_mode {
        return disabled();
    }
    let Some(user_id) = query.user_id else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": ErrorCode::InvalidParameter.as_u32(), "message": "userID is required"})),
        )
            .into_response();
    };
    if let Err(refusal) = beckon_core::check_user_id("userID", &user_id) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": refusal.code.as_u32(), "message": refusal.message})),
        )
            .into_response();
    }
    let sig = state
        .key
        .generate(&user_id, crate::now_ms() / 1000, DEV_SIG_SECONDS);
    Json(json!({
        "SDKAppID": state.key.sdk_app_id(),
        "userID": user_id,
        "userSig": sig,
        "expire": DEV_SIG_SECONDS,
    }))
    .into_response()
}

/// `GET /dev/users` → `{users: [...]}`: accounts to call, sorted.
pub(crate) async fn users(State(state): State<Arc<AppState>>) -> Response {
    if !state.config.dev_mode {
        return disabled();
    }
    let mut users = state.service.user_ids(MAX_LISTED_USERS);
    users.sort();
    Json(json!({"users": users})).into_response()
}
