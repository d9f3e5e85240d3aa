//! Request bodies and the error shape of rejected requests.
//!
//! `Body` is the JSON body extractor of every handler: a malformed body is a 400, a body
//! of the wrong shape a 422 naming the field, a body over the size limit a 413, each in
//! the standard error body. `json_errors` is the API router's last word on errors: any
//! error answer that is not JSON (axum's plain-text rejections of query strings, paths,
//! methods, multipart bodies; a layer's bare status) is rewritten into that body too, so
//! every error of `/api/v1` looks the same.

use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON body whose rejection is an API error in the standard error body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| rejection(e.status(), &e.body_text()))?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses a JSON body; a type error names the field at fault (`variants[0].price`). Every
/// body of the API is an object: an array is refused (serde would read a struct from one,
/// member by position).
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the body must be a JSON object, not an array",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("the body is not valid JSON: {inner}"))
        } else {
            let message = inner.to_string();
            ApiError::invalid(member_path(&field, &message), message)
        }
    })
}

/// The field a serde error is about: its path, plus the member an unknown or missing
/// field error names (serde reports those at the enclosing object, `.` for the root).
fn member_path(path: &str, message: &str) -> String {
    let object = if path == "." { "" } else { path };
    let member = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match member {
        Some(name) if object.is_empty() => name.to_owned(),
        Some(name) if object != name && !object.ends_with(&format!(".{name}")) => {
            format!("{object}.{name}")
        }
        _ => object.to_owned(),
    }
}

/// The stable code of an error status that carries no code of its own.
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        431 => "headers_too_large",
        503 => "unavailable",
        504 => "timeout",
        500..=599 => "internal",
        _ => "error",
    }
}

/// What a framework rejection (status and plain text) becomes: the standard error, a query
/// string of the wrong shape as a 422 naming the parameter.
fn rejection(status: StatusCode, text: &str) -> ApiError {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("Failed to deserialize query string: ") {
        // axum reports `<parameter>: <serde error>` (serde_path_to_error)
        let (field, problem) = match rest.split_once(": ") {
            Some((f, p)) if !f.contains(' ') => (f.to_owned(), p),
            _ => (member_path(".", rest), rest),
        };
        let message = if field.is_empty() {
            format!("invalid query string: {problem}")
        } else {
            format!("invalid query parameter `{field}`: {problem}")
        };
        return if field.is_empty() {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
        } else {
            ApiError::invalid(field, message)
        };
    }
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        let mut m = text.to_owned();
        if let Some(first) = m.get(..1) {
            let lower = first.to_lowercase();
            m.replace_range(..1, &lower);
        }
        m
    };
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        // Details of a server error are logged, not sent.
        return ApiError::internal(&message);
    }
    ApiError::new(status, code_of(status), message)
}

/// Most bytes of a non-JSON error body read to reuse as the message.
const MAX_REJECTION_TEXT: usize = 4096;

/// Rewrites error answers that are not JSON into the standard error body, keeping their
/// status and headers (`Allow`, `Retry-After`).
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT).await.unwrap_or_default();
    let error = rejection(status, &String::from_utf8_lossy(&text));
    let mut rewritten = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.status = rewritten.status();
    *rewritten.headers_mut() = parts.headers;
    rewritten
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(status: u16, text: &str, expected: (u16, &str, Option<&str>)) {
        let e = rejection(StatusCode::from_u16(status).unwrap(), text);
        assert_eq!((e.status.as_u16(), e.code, e.field.as_deref()), expected, "{e}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn framework_rejections_become_api_errors() {
        check(
            400,
            "Failed to deserialize query string: limit: invalid digit found in string",
            (422, "validation_failed", Some("limit")),
        );
        check(
            400,
            "Failed to deserialize query string: missing field `channel`",
            (422, "validation_failed", Some("channel")),
        );
        check(405, "", (405, "method_not_allowed", None));
        check(
            413,
            "Failed to buffer the request body: length limit exceeded",
            (413, "payload_too_large", None),
        );
        check(400, "Invalid URL: Cannot parse `%FF` as UTF-8", (400, "bad_request", None));
        check(500, "secret detail", (500, "internal", None));
        assert_eq!(
            rejection(StatusCode::INTERNAL_SERVER_ERROR, "secret").message,
            "internal error"
        );
    }

    #[test]
    fn body_errors_name_the_field() {
        let e =
            parse_json::<std::collections::HashMap<String, u32>>(b"{\"a\": \"x\"}").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("a"));
        let e = parse_json::<serde_json::Value>(b"{").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Two {
            a: Option<u32>,
            b: Option<u32>,
        }
        let e = parse_json::<Two>(b" [null, null]").unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    }
}
