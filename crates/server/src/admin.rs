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

/// Returns early with the error response.
macro_rules! try_response {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
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

/// Authorizes the request and parses its JSON body.
fn admin_body(state: &AppState, query: &AdminQuery, body: &Bytes) -> Result<Value, Response> {
    authorize(state, query)?;
    body_json(body)
}

fn ok(mut extra: Value) -> Response {
    extra["ActionStatus"] = json!("OK");
    extra["ErrorCode"] = json!(0);
    extra["ErrorInfo"] = json!("");
    Json(extra).into_response()
}

fn refused(refusal: &beckon_core::Refusal) -> Response {
    let status = match refusal.code {
        ErrorCode::UnknownGroup => StatusCode::NOT_FOUND,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    fail(status, refusal.code, refusal.message.clone())
}

fn string_field<'a>(body: &'a Value, key: &str) -> Result<&'a str, Response> {
    body.get(key).and_then(Value::as_str).ok_or_else(|| {
        fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            format!("{key} (string) is required"),
        )
    })
}

/// `[{"Member_Account": "bob"}, ...]` → userIDs.
fn member_accounts(body: &Value, key: &str) -> Result<Vec<String>, Response> {
    let list = match body.get(key) {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidParameter,
                format!("{key} must be a list"),
            ))
        }
    };
    list.iter()
        .map(|m| {
            m.get("Member_Account")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            fail(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidParameter,
                format!("{key} entries need Member_Account"),
            )
        })
}

/// `account_import`: `{"UserID": "bob"}` creates the account (no-op when it exists).
pub(crate) async fn account_import(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let body = try_response!(admin_body(&state, &query, &body));
    let user = try_response!(string_field(&body, "UserID"));
    if let Err(refusal) = beckon_core::check_user_id("UserID", user) {
        return fail(StatusCode::BAD_REQUEST, refusal.code, refusal.message);
    }
    try_response!(import(&state, vec![user.to_owned()]).await);
    ok(json!({}))
}

/// A list of at most `MAX_IMPORT_ACCOUNTS` entries under `key`.
fn bounded_list<'a>(body: &'a Value, key: &str) -> Result<&'a Vec<Value>, Response> {
    let list = body.get(key).and_then(Value::as_array).ok_or_else(|| {
        fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            format!("{key} (list) is required"),
        )
    })?;
    if list.len() > MAX_IMPORT_ACCOUNTS {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::TooLarge,
            format!("at most {MAX_IMPORT_ACCOUNTS} entries in {key}"),
        ));
    }
    Ok(list)
}

/// `multiaccount_import`: `{"Accounts": ["a", "b"]}`; invalid IDs come back in `FailAccounts`.
pub(crate) async fn multiaccount_import(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let body = try_response!(admin_body(&state, &query, &body));
    let accounts = try_response!(bounded_list(&body, "Accounts"));
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
    let failed = try_response!(import(&state, users).await);
    ok(json!({"FailAccounts": failed}))
}

/// `account_check`: `{"CheckItem": [{"UserID": "a"}]}` → whether each account exists.
pub(crate) async fn account_check(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let body = try_response!(admin_body(&state, &query, &body));
    let items = try_response!(bounded_list(&body, "CheckItem"));
    let results: Vec<Value> = items
        .iter()
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
    ok(json!({"ResultItem": results}))
}

/// The `GroupId` and owner of an authorized admin request that names only a group.
fn group_request(
    state: &AppState,
    query: &AdminQuery,
    body: &Bytes,
) -> Result<(String, crate::service::Actor), Response> {
    let body = admin_body(state, query, body)?;
    let group_id = string_field(&body, "GroupId")?.to_owned();
    let owner = group_owner(state, &group_id)?;
    Ok((group_id, owner))
}

/// The owner of a live group, as whom the admin API acts.
fn group_owner(state: &AppState, group_id: &str) -> Result<crate::service::Actor, Response> {
    state
        .service
        .owner_of(group_id)
        .map_err(|refusal| refused(&refusal))
}

/// Tencent REST type names, mapped to the SDK's (`Work` is `Private`, `Meeting` is `ChatRoom`).
fn group_kind(rest: Option<&str>) -> Option<String> {
    rest.map(|kind| match kind {
        "Work" => "Private".to_owned(),
        "Meeting" => "ChatRoom".to_owned(),
        other => other.to_owned(),
    })
}

/// `group_open_http_svc/create_group`: `{Owner_Account, Type?, GroupId?, Name, MemberList?}`.
pub(crate) async fn create_group(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let body = try_response!(admin_body(&state, &query, &body));
    let owner = try_response!(string_field(&body, "Owner_Account"));
    let name = try_response!(string_field(&body, "Name"));
    let members = try_response!(member_accounts(&body, "MemberList"));
    if !state.service.user_exists(owner) {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnknownUser,
            format!("no account for owner {owner:?}"),
        );
    }
    let params = beckon_proto::frames::CreateGroupParams {
        group_id: body
            .get("GroupId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        name: name.to_owned(),
        kind: group_kind(body.get("Type").and_then(Value::as_str)),
        member_list: members
            .into_iter()
            .map(|user_id| beckon_proto::frames::MemberRef { user_id })
            .collect(),
    };
    let actor = crate::service::Actor {
        user_id: owner.to_owned(),
        instance_id: String::new(),
    };
    match state.service.create_group(&actor, params).await {
        Ok(group) => ok(json!({"GroupId": group.group_id})),
        Err(refusal) => refused(&refusal),
    }
}

/// `group_open_http_svc/add_group_member`: `{GroupId, MemberList: [{Member_Account}]}`.
pub(crate) async fn add_group_member(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let body = try_response!(admin_body(&state, &query, &body));
    let group_id = try_response!(string_field(&body, "GroupId")).to_owned();
    let users = try_response!(member_accounts(&body, "MemberList"));
    let owner = try_response!(group_owner(&state, &group_id));
    let params = beckon_proto::frames::GroupMembersParams {
        group_id,
        user_id_list: users,
    };
    match state.service.add_group_members(&owner, params).await {
        Ok((added, existed, _)) => {
            let list: Vec<Value> = added
                .iter()
                .map(|u| json!({"Member_Account": u, "Result": 1}))
                .chain(
                    existed
                        .iter()
                        .map(|u| json!({"Member_Account": u, "Result": 2})),
                )
                .collect();
            ok(json!({"MemberList": list}))
        }
        Err(refusal) => refused(&refusal),
    }
}

/// `group_open_http_svc/delete_group_member`: `{GroupId, MemberToDel_Account: [..]}`.
pub(crate) async fn delete_group_member(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let body = try_response!(admin_body(&state, &query, &body));
    let group_id = try_response!(string_field(&body, "GroupId")).to_owned();
    let Some(users) = body
        .get("MemberToDel_Account")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .map(|u| u.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            "MemberToDel_Account (list of strings) is required",
        );
    };
    let owner = try_response!(group_owner(&state, &group_id));
    let params = beckon_proto::frames::GroupMembersParams {
        group_id,
        user_id_list: users,
    };
    match state.service.delete_group_members(&owner, params).await {
        Ok(_) => ok(json!({})),
        Err(refusal) => refused(&refusal),
    }
}

/// `group_open_http_svc/destroy_group`: `{GroupId}`.
pub(crate) async fn destroy_group(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let (group_id, owner) = try_response!(group_request(&state, &query, &body));
    match state.service.dismiss_group(&owner, &group_id).await {
        Ok(()) => ok(json!({})),
        Err(refusal) => refused(&refusal),
    }
}

/// `group_open_http_svc/get_group_member_info`: `{GroupId}` → every member.
pub(crate) async fn get_group_member_info(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AdminQuery>,
    body: Bytes,
) -> Response {
    let (group_id, owner) = try_response!(group_request(&state, &query, &body));
    match state.service.group_members(
        &owner,
        &group_id,
        0,
        beckon_proto::limits::MAX_GROUP_MEMBERS,
    ) {
        Ok(members) => {
            let list: Vec<Value> = members
                .iter()
                .map(|m| json!({"Member_Account": m.user_id, "Role": m.role, "JoinTime": m.join_time}))
                .collect();
            ok(json!({"MemberNum": list.len(), "MemberList": list}))
        }
        Err(refusal) => refused(&refusal),
    }
}
