//! Errors as RFC 9457 `application/problem+json`, carrying the engine's rule
//! name for refusals.

use attest_core::Error;
use attest_engine::Rule;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An API error: a status, a stable type slug and the words for a person.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The engine rule that refused the command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:attest:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            rule: None,
            task: None,
            field: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail)
    }
    pub fn unsupported_media(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Status for a refusal: a command that lost a race against the run's state is
/// a conflict; an unknown task is not found; every other rule is a 422.
pub fn refusal_status(rule: Rule) -> StatusCode {
    match rule {
        Rule::AlreadyCompleted | Rule::RunNotOpen | Rule::TaskLocked => StatusCode::CONFLICT,
        Rule::UnknownTask => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        match e {
            Error::Refused(r) => {
                let status = refusal_status(r.rule);
                let mut p = Problem::new(status, r.rule.name(), r.message);
                p.title = "Refused by a rule".into();
                p.rule = Some(r.rule.name());
                p.task = r.task;
                p.field = r.field;
                p
            }
            Error::Conflict(m) => Problem::conflict(m),
            Error::NotFound(m) => Problem::not_found(m),
            Error::InvalidTemplate(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-template", e.to_string())
            }
            Error::BadInput(m) if m.contains("limit") && m.contains("bytes") => Problem::too_large(m),
            Error::BadInput(m) => Problem::bad_request(m),
            Error::Setup(m) => Problem::internal(m),
            Error::Other(err) => {
                tracing::error!(error = %err, "internal error");
                Problem::internal("an internal error occurred; the server log has the details")
            }
        }
    }
}

impl From<attest_store::StoreError> for Problem {
    fn from(e: attest_store::StoreError) -> Self {
        Problem::from(Error::from(e))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(rule) = self.rule {
            res.extensions_mut().insert(RefusedRule(rule));
        }
        res
    }
}

/// Marks a response as a refusal, for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RefusedRule(pub &'static str);

pub type ApiResult<T> = std::result::Result<T, Problem>;
