//! `/dashboard/`: the static page, embedded in the binary (the box may have
//! no internet, and the page must match the API it talks to).

use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::header::{CONTENT_SECURITY_POLICY, HeaderName, REFERRER_POLICY, X_FRAME_OPTIONS};

use super::auth::Access;
use super::respond::{Answer, ApiError, bytes, set};

/// Only our own files and API: no inline script, nothing from elsewhere,
/// not framed by another site.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const FILES: [(&str, &str, &str); 5] = [
    (
        "/dashboard/",
        "text/html; charset=utf-8",
        include_str!("../dashboard/index.html"),
    ),
    (
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/app.js"),
    ),
    (
        "/dashboard/graph.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/graph.js"),
    ),
    (
        "/dashboard/icon.svg",
        "image/svg+xml",
        include_str!("../dashboard/icon.svg"),
    ),
    (
        "/dashboard/style.css",
        "text/css; charset=utf-8",
        include_str!("../dashboard/style.css"),
    ),
];

/// Whether `path` may be fetched without credentials: with a bearer token
/// the page must load before it can send the token; with basic auth the
/// browser asks for the password on the page itself.
pub fn is_public(path: &str, access: &Access) -> bool {
    let path = canonical(path);
    !matches!(access, Access::Basic(_))
        && (path == "/dashboard" || path == "/" || FILES.iter().any(|f| f.0 == path))
}

/// The page has two names; access and content follow the one it is filed
/// under.
fn canonical(path: &str) -> &str {
    if path == "/dashboard/index.html" {
        "/dashboard/"
    } else {
        path
    }
}

pub fn file(path: &str) -> Answer {
    let path = canonical(path);
    let Some(&(_, kind, text)) = FILES.iter().find(|f| f.0 == path) else {
        return Err(ApiError::not_found(format!("no such file: {path}")));
    };
    let mut r = bytes(StatusCode::OK, kind, Bytes::from_static(text.as_bytes()));
    set(&mut r, CONTENT_SECURITY_POLICY, CSP);
    set(&mut r, X_FRAME_OPTIONS, "DENY");
    set(&mut r, REFERRER_POLICY, "no-referrer");
    set(
        &mut r,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    Ok(r)
}
