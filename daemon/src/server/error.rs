//! The API's one error shape: `{"error": {"code": "stable-code", "message": "..."}}` with the
//! right HTTP status. Codes are part of the API (docs/API.md lists them) and never change
//! meaning; messages are for people and may change.
//!
//! Every failure a handler can meet maps here, including the runtime's [`crate::Error`] and the
//! bundle reader's errors, so no handler invents a status of its own.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not-found` for a bundle the caller's tenant does not have. The same answer whether
    /// or not another tenant has a bundle of that name.
    pub fn bundle_not_found(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "bundle-not-found",
            format!("no bundle named `{name}`"),
        )
    }

    /// 500 `internal` (logged by the caller).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = (self.status, axum_json(&body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tensorwasmd\""),
            );
        }
        response
    }
}

/// Serializes a JSON value to bytes (infallible for `serde_json::Value`).
pub fn axum_json(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Maps a runtime error (restore or invocation) to an API error.
pub fn from_runtime(e: &crate::Error) -> ApiError {
    use crate::Error as E;
    let (status, code) = match e {
        E::Bundle(b) => return from_bundle(b),
        // The pooling allocator refuses, at load time, a module whose memory cannot fit a
        // slot of --max-memory: that is the memory limit, not an incompatible build.
        E::Deserialize { message, .. } if message.contains("pooling allocator") => {
            (StatusCode::UNPROCESSABLE_ENTITY, "memory-limit-exceeded")
        }
        E::NoTarget { .. }
        | E::WasmtimeVersion { .. }
        | E::EngineMismatch { .. }
        | E::CpuFeatures { .. }
        | E::Deserialize { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "incompatible-bundle"),
        E::UnknownExport { .. } => (StatusCode::NOT_FOUND, "unknown-export"),
        E::NotAFunction { .. } => (StatusCode::BAD_REQUEST, "not-a-function"),
        E::ArgCount { .. } => (StatusCode::BAD_REQUEST, "bad-arity"),
        E::ArgType { .. } => (StatusCode::BAD_REQUEST, "bad-argument"),
        E::ArgsJson(_) => (StatusCode::BAD_REQUEST, "bad-json"),
        E::NotACommand { .. } => (StatusCode::BAD_REQUEST, "not-a-command"),
        E::Instantiate(_) => (StatusCode::UNPROCESSABLE_ENTITY, "instantiation-failed"),
        E::MemoryLimit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "memory-limit-exceeded"),
        E::Trap(_) => (StatusCode::UNPROCESSABLE_ENTITY, "guest-trap"),
        E::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "deadline-exceeded"),
        E::Preopen { .. } | E::Runtime(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError::new(status, code, e.to_string())
}

/// Maps a bundle verification error to an API error: all are the bundle's fault (422).
pub fn from_bundle(e: &tensorwasm_bundle::Error) -> ApiError {
    use tensorwasm_bundle::Error as B;
    let code = match e {
        B::UntrustedKey { .. } | B::NoSignatures => "untrusted-signer",
        B::Expired { .. } => "bundle-expired",
        _ => "invalid-bundle",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
}
