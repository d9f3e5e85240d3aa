//! The one error type of the HTTP API and its JSON body:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error: a status, a stable machine-readable code, a message for people and, when
/// one input is at fault, the field (a JSON pointer-like path such as `variants[0].price`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code such as `not_found` or `validation_failed`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// The input field at fault.
    pub field: Option<String>,
    /// Further problems (all validation errors at once), each with its own field.
    pub details: Vec<Detail>,
}

/// One of several problems with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// Stable code of the problem.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// The field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The error body, as documented in the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// The `error` member of an error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable code such as `not_found`, `validation_failed`, `out_of_stock`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The input field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, details: Vec::new() }
    }

    /// The same error, naming the field at fault.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 404: the thing does not exist, or belongs to another shop (never 403, so that ids of
    /// other shops cannot be probed).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 401: no or an unknown key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid key whose role does not allow the action on its own shop.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: the input is well-formed but invalid; `field` names where.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message).with_field(field)
    }

    /// 409: the input clashes with existing data (a taken handle or SKU).
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message).with_field(field)
    }

    /// 500 with a message safe to show; the cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// 503: a dependency (a database) is down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 422 with every diagnostic of the engine, the first one as the headline.
    pub fn from_diagnostics(d: &aurelio_engine::Diagnostics) -> Self {
        let details: Vec<Detail> = d
            .iter()
            .filter(|d| d.severity == aurelio_engine::Severity::Error)
            .map(|d| Detail {
                code: d.code.to_owned(),
                message: d.message.clone(),
                field: d.field.clone(),
            })
            .collect();
        let first = details.first().cloned().unwrap_or(Detail {
            code: "invalid".into(),
            message: "the input is invalid".into(),
            field: None,
        });
        let mut err =
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", first.message);
        err.field = first.field;
        if details.len() > 1 {
            err.details = details;
        }
        err
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::not_found("record"),
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, "database unavailable");
                Self::unavailable("the database is unavailable, try again")
            }
            _ => Self::internal(&e),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        Self::new(e.status(), "bad_request", e.body_text())
    }
}

/// Whether a database error is a unique-constraint violation (on SQLite and PostgreSQL).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
