//! HTTP routes: the WebSocket endpoint, health, and the admin API.

use crate::AppState;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use beckon_proto::{limits, SUBPROTOCOL, WS_PATH};
use std::sync::Arc;

/// WebSocket buffers are kept small: signaling frames are small, and tens of thousands of idle
/// connections must fit in memory. The transport also zero-fills the read buffer's free room
/// before every read, including the many that find nothing: with 4 KiB that was 5% of the
/// server's instructions, and 3 KiB more per idle connection. A larger frame takes more reads.
const WS_READ_BUFFER: usize = 1024;
const WS_WRITE_BUFFER: usize = 4 * 1024;
/// Cap on one outgoing frame plus what is already buffered; a full message page (100 messages
/// of 8 KiB data) or conversation list fits.
const WS_MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;
/// Frames beyond this are cut off by the transport; frames over `MAX_FRAME_BYTES` but under
/// this get a clean close with code 4100.
const WS_HARD_FRAME_LIMIT: usize = 1024 * 1024;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(WS_PATH, get(upgrade))
        .route("/", get(crate::assets::index))
        .route("/demo/{file}", get(crate::assets::demo))
        .route("/sdk/{file}", get(crate::assets::sdk))
        .route("/healthz", get(healthz))
        .route("/dev/usersig", get(crate::dev::usersig))
        .route("/dev/users", get(crate::dev::users))
        .route(
            "/v4/im_open_login_svc/account_import",
            post(crate::admin::account_import),
        )
        .route(
            "/v4/im_open_login_svc/multiaccount_import",
            post(crate::admin::multiaccount_import),
        )
        .route(
            "/v4/im_open_login_svc/account_check",
            post(crate::admin::account_check),
        )
        .route(
            "/v4/group_open_http_svc/create_group",
            post(crate::admin::create_group),
        )
        .route(
            "/v4/group_open_http_svc/add_group_member",
            post(crate::admin::add_group_member),
        )
        .route(
            "/v4/group_open_http_svc/delete_group_member",
            post(crate::admin::delete_group_member),
        )
        .route(
            "/v4/group_open_http_svc/destroy_group",
            post(crate::admin::destroy_group),
        )
        .route(
            "/v4/group_open_http_svc/get_group_member_info",
            post(crate::admin::get_group_member_info),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            limits::MAX_FRAME_BYTES,
        ))
        .with_state(state)
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.protocols([SUBPROTOCOL])
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_write_buffer_size(WS_MAX_WRITE_BUFFER)
        .max_message_size(WS_HARD_FRAME_LIMIT)
        .max_frame_size(WS_HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| crate::ws::serve(socket, state))
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "connections": state.registry.connection_count(),
        "activeInvitations": state.service.active_invitation_count(),
    }))
}
