//! Static files built into the binary: the demo page at `/` and the web SDK at `/sdk/`, so
//! `beckon serve` needs no separate web server.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../../sdk/web/demo/"]
#[include = "*.html"]
#[include = "*.js"]
#[include = "*.css"]
#[include = "*.svg"]
#[include = "*.wav"]
struct Demo;

#[derive(rust_embed::RustEmbed)]
#[folder = "../../sdk/web/src/"]
#[include = "*.js"]
struct Sdk;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str, file: Option<rust_embed::EmbeddedFile>) -> Response {
    match file {
        Some(file) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data.into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `GET /`: the demo page.
pub(crate) async fn index() -> Response {
    serve("index.html", Demo::get("index.html"))
}

/// `GET /demo/{file}`: the demo page's scripts and styles.
pub(crate) async fn demo(Path(file): Path<String>) -> Response {
    serve(&file, Demo::get(&file))
}

/// `GET /sdk/{file}`: the web SDK's ES modules (`/sdk/index.js` is the entry point).
pub(crate) async fn sdk(Path(file): Path<String>) -> Response {
    serve(&file, Sdk::get(&file))
}
