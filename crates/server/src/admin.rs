//! Admin HTTP API for app backends, shaped like Tencent's REST API so existing backends can
//! call it: `POST /v4/im_open_login_svc/<command>?sdkappid=..&identifier=..&usersig=..`,
//! authorized by a UserSig of the administrator identifier.

// Handlers answer with a full `Response`; returning it by value from the helpers keeps them
// simple, and it happens once per admin request.
#![allow(clippy::result_large_err)]

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use beckon_proto::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Most accounts one `multiaccount_import` may carry (Tencent's limit).
pub(crate) const MAX_IMPORT_ACCOUNTS: usize = 100;

#[derive(Debug, Deserialize)]
pub(crate) struct AdminQuery {
    sdkappid: Option<u64>,
    identifier: Option<String>,
    usersig: Option<String>,
}

fn fail(status: StatusCode, code: ErrorCode, info: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"ActionStatus": "FAIL", "ErrorCode": code.as_u32(), "ErrorInfo": info.into()})),
    )
        .into_response()
}

fn authorize(state: &AppState, query: &AdminQuery) -> Result<(), Response> {
    let (Some(app), Some(identifier), Some(sig)) =
        (query.sdkappid, &query.identifier, &query.usersig)
    else {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AdminUnauthorized,
            "sdkappid, identifier and usersig query parameters are required",
        ));
    };
    if app != state.key.sdk_app_id() {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SdkAppIdMismatch,
            "wrong sdkappid",
        ));
    }
    if *identifier != state.config.admin_identifier {
        return Err(fail(
            StatusCode::FORBIDDEN,
            ErrorCode::AdminUnauthorized,
            format!(
                "identifier must be the administrator ({})",
                state.config.admin_identifier
            ),
        ));
    }
    state
        .key
        .verify(identifier, sig, crate::now_ms() / 1000)
        .map(|_| ())
        .map_err(|e| {
            fail(
                StatusCode::UNAUTHORIZED,
                ErrorCode::AdminUnauthorized,
                e.to_string(),
            )
        })
}

fn body_json(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            format!("body is not JSON: {e}"),
        )
    })
}

async fn import(state: &AppState, users: Vec<String>) -> Result<Vec<String>, Response> {
    let mut failed = Vec::new();
    for user in users {
        if beckon_core::check_user_id("UserID", &user).is_err() {
            failed.push(user);
            continue;
        }
        state
            .service
            .ensure_user(&user)
            .await
            .map_err(|r| fail(StatusCode::INTERNAL_SERVER_ERROR, r.code, r.message))?;
    }
    Ok(failed)
}

/// `account_import`: `{"UserID": "bob"}` creates the account (no-op when it exists).
pub(crate) async fn account_import(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&state, &query) {
        return response;
    }
    let body = match body_json(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(user) = body.get("UserID").and_then(Value::as_str) else {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            "UserID (string) is required",
        );
    };
    if let Err(refusal) = beckon_core::check_user_id("UserID", user) {
        return fail(StatusCode::BAD_REQUEST, refusal.code, refusal.message);
    }
    match import(&state, vec![user.to_owned()]).await {
        Ok(_) => {
            Json(json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})).into_response()
        }
        Err(response) => response,
    }
}

/// `multiaccount_import`: `{"Accounts": ["a", "b"]}`; invalid IDs come back in `FailAccounts`.
pub(crate) async fn multiaccount_import(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&state, &query) {
        return response;
    }
    let body = match body_json(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(accounts) = body.get("Accounts").and_then(Value::as_array) else {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            "Accounts (list of strings) is required",
        );
    };
    if accounts.len() > MAX_IMPORT_ACCOUNTS {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::TooLarge,
            format!("at most {MAX_IMPORT_ACCOUNTS} accounts per request"),
        );
    }
    let Some(users) = accounts
        .iter()
        .map(|a| a.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            "every account must be a string",
        );
    };
    match import(&state, users).await {
        Ok(failed) => Json(
            json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "FailAccounts": failed}),
        )
        .into_response(),
        Err(response) => response,
    }
}

/// `account_check`: `{"CheckItem": [{"UserID": "a"}]}` → whether each account exists.
pub(crate) async fn account_check(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    if let Err(response) = authorize(&state, &query) {
        return response;
    }
    let body = match body_json(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(items) = body.get("CheckItem").and_then(Value::as_array) else {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            "CheckItem (list) is required",
        );
    };
    let results: Vec<Value> = items
        .iter()
        .take(MAX_IMPORT_ACCOUNTS)
        .filter_map(|item| item.get("UserID").and_then(Value::as_str))
        .map(|user| {
            let status = if state.service.user_exists(user) {
                "Imported"
            } else {
                "NotImported"
            };
            json!({"UserID": user, "ResultCode": 0, "ResultInfo": "", "AccountStatus": status})
        })
        .collect();
    Json(json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "ResultItem": results}))
        .into_response()
}
