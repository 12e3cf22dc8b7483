//! Building responses: JSON, text, errors with a message, and the headers
//! every answer carries.

use http_body_util::{Either, Full};
use hyper::body::Bytes;
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use super::stream::EventBody;

/// A whole body at once, or the event stream.
pub type Body = Either<Full<Bytes>, EventBody>;

/// A request that cannot be answered as asked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    pub fn response(&self) -> Response<Body> {
        json(self.status, &serde_json::json!({ "error": self.message }))
    }
}

pub type Answer = Result<Response<Body>, ApiError>;

/// A response with the headers every answer carries: no caching (it is
/// live data) and no content sniffing.
pub fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

pub fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    with_body(status, content_type, Either::Left(Full::new(body)))
}

pub fn json_bytes(body: Bytes) -> Response<Body> {
    bytes(StatusCode::OK, "application/json", body)
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Response<Body> {
    // Serializing our own types into memory cannot fail; an empty object
    // is still valid JSON should it ever.
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    bytes(status, "application/json", Bytes::from(body))
}

pub fn ok<T: Serialize + ?Sized>(v: &T) -> Answer {
    Ok(json(StatusCode::OK, v))
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    bytes(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

pub fn redirect(to: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::MOVED_PERMANENTLY, "moved\n");
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    r
}

pub fn method_not_allowed(method: &Method, path: &str) -> Response<Body> {
    let mut r = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {path}; use GET"),
    }
    .response();
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// Adds a header known at compile time.
pub fn set(r: &mut Response<Body>, name: HeaderName, value: &'static str) {
    r.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}
