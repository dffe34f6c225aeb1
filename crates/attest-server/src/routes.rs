//! The route table: every endpoint with the action the access decision uses
//! and what the OpenAPI document says about it. The router, the guard, the
//! OpenAPI document and the authorization matrix test all read this table.

use serde_json::{Value, json};

use crate::access::Action;

#[derive(Debug, Clone, Copy)]
pub enum BodyKind {
    None,
    Json(fn() -> Value),
    Multipart,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub schema: fn() -> Value,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    /// The path as routed, with `{param}` segments (the OpenAPI syntax too).
    pub path: &'static str,
    pub action: Action,
    pub tag: &'static str,
    pub summary: &'static str,
    pub body: BodyKind,
    pub query: &'static [Param],
    /// The success status.
    pub ok: u16,
    /// The success response's schema; `None` for a non-JSON response.
    pub response: Option<fn() -> Value>,
}

impl RouteSpec {
    /// Whether the route is part of the versioned JSON API.
    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/v1/") || self.path.starts_with("/hooks/")
    }

    /// Whether the route is a page of the web app (HTML for browsers; not in
    /// the OpenAPI document; refusals answer as pages, not problem+json).
    pub fn is_page(&self) -> bool {
        self.tag == PAGES
    }
}

/// The tag of the web app's page routes.
pub const PAGES: &str = "pages";

pub fn find(method: &str, path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

// ----- schemas -----

fn s_str() -> Value {
    json!({"type": "string"})
}
fn s_int() -> Value {
    json!({"type": "integer"})
}
fn s_limit() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 1000})
}
fn s_index() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": 9007199254740991_u64})
}
fn s_size() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 9007199254740991_u64})
}
fn s_status() -> Value {
    json!({"type": "string", "enum": ["open", "completed", "cancelled"]})
}
fn s_ts() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn s_any() -> Value {
    json!({})
}
fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}
fn strict(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}
fn list_of(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

fn b_login() -> Value {
    strict(
        json!({"email": {"type": "string", "maxLength": 320}, "password": {"type": "string", "maxLength": 1024}}),
        &["email", "password"],
    )
}
fn b_password() -> Value {
    strict(
        json!({
            "current_password": {"type": "string", "maxLength": 1024},
            "new_password": {"type": "string", "minLength": 12, "maxLength": 1024}
        }),
        &["current_password", "new_password"],
    )
}
fn b_template() -> Value {
    strict(
        json!({
            "source": {"type": "string", "description": "The template file's text (YAML or JSON), at most 1 MiB."},
            "format": {"type": ["string", "null"], "enum": ["yaml", "json", null], "default": "yaml"}
        }),
        &["source"],
    )
}
fn b_start() -> Value {
    strict(
        json!({"template": {"type": "string", "maxLength": 200}, "name": {"type": ["string", "null"], "maxLength": 200}}),
        &["template"],
    )
}
fn b_values() -> Value {
    strict(json!({"values": {"type": "object", "maxProperties": 200}}), &["values"])
}
fn b_complete() -> Value {
    strict(json!({"values": {"type": "object", "maxProperties": 200}}), &[])
}
fn b_approve() -> Value {
    strict(json!({"comment": {"type": ["string", "null"], "maxLength": 10000}}), &[])
}
fn b_comment_required() -> Value {
    strict(json!({"comment": {"type": "string", "minLength": 1, "maxLength": 10000}}), &["comment"])
}
fn b_text() -> Value {
    strict(json!({"text": {"type": "string", "minLength": 1, "maxLength": 10000}}), &["text"])
}
fn b_cancel() -> Value {
    strict(json!({"reason": {"type": "string", "minLength": 1, "maxLength": 10000}}), &["reason"])
}
fn b_person() -> Value {
    strict(
        json!({
            "email": {"type": "string", "format": "email", "maxLength": 320},
            "name": {"type": "string", "maxLength": 200},
            "admin": {"type": "boolean"},
            "roles": {"type": "array", "maxItems": 50, "items": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}}
        }),
        &["email"],
    )
}
fn b_role() -> Value {
    strict(json!({"role": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}}), &["role"])
}
fn b_token() -> Value {
    strict(
        json!({
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "kind": {"type": ["string", "null"], "enum": ["token", "agent", null], "default": "token"},
            "access": {"type": "string", "enum": ["admin", "process-owner", "member", "auditor"]},
            "roles": {"type": "array", "maxItems": 50, "items": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}}
        }),
        &["name", "access"],
    )
}

fn r_health() -> Value {
    obj(json!({"status": s_str()}), &["status"])
}
fn r_me() -> Value {
    obj(
        json!({"id": s_str(), "kind": s_str(), "access": s_str(), "roles": list_of(s_str()),
               "admin": {"type": "boolean"}, "must_change_password": {"type": "boolean"}}),
        &["id", "kind", "access", "roles"],
    )
}
fn r_login() -> Value {
    obj(
        json!({"email": s_str(), "csrf_token": s_str(), "must_change_password": {"type": "boolean"}}),
        &["email", "csrf_token", "must_change_password"],
    )
}
fn r_ok() -> Value {
    obj(json!({"ok": {"type": "boolean"}}), &["ok"])
}
fn r_template_summary() -> Value {
    obj(
        json!({"key": s_str(), "name": s_str(), "latest_version": s_int(), "open_runs": s_int(), "total_runs": s_int()}),
        &["key", "name", "latest_version"],
    )
}
fn r_templates() -> Value {
    obj(json!({"items": list_of(r_template_summary())}), &["items"])
}
fn r_version() -> Value {
    obj(
        json!({"key": s_str(), "name": s_str(), "version": s_int(), "content_hash": s_str(),
               "published_at": s_ts(), "published_by": s_str(), "template": {"type": "object"}}),
        &["key", "version", "content_hash"],
    )
}
fn r_versions() -> Value {
    obj(json!({"items": list_of(r_version())}), &["items"])
}
fn r_validated() -> Value {
    obj(json!({"valid": {"type": "boolean"}, "key": s_str(), "name": s_str(), "content_hash": s_str()}), &["valid"])
}
fn r_published() -> Value {
    obj(
        json!({"key": s_str(), "version": s_int(), "content_hash": s_str(), "unchanged": {"type": "boolean"}}),
        &["key", "version", "content_hash", "unchanged"],
    )
}
fn r_run_row() -> Value {
    obj(
        json!({"id": s_str(), "template_key": s_str(), "template_version": s_int(), "name": s_str(),
               "status": s_status(), "starter": s_str(), "started_at": s_ts(), "updated_at": s_ts(),
               "finished_at": {"type": ["string", "null"]}, "version": s_int()}),
        &["id", "template_key", "status", "version"],
    )
}
fn r_runs() -> Value {
    obj(json!({"items": list_of(r_run_row()), "next_cursor": {"type": ["string", "null"]}}), &["items"])
}
fn r_run_state() -> Value {
    obj(
        json!({"run": s_str(), "status": s_status(), "version": s_int(), "template": s_str()}),
        &["run", "status", "version"],
    )
}
fn r_run() -> Value {
    obj(
        json!({"run": s_str(), "name": s_str(), "template": s_str(), "version": s_int(), "status": s_status(),
               "starter": s_str(), "started_at": s_ts(), "values": {"type": "object"},
               "due_at": {"type": ["string", "null"], "format": "date-time"},
               "tasks": list_of(obj(json!({"key": s_str(), "name": s_str(), "status": s_str(),
                                           "assignees": list_of(s_str())}), &["key", "status"]))}),
        &["run", "status", "tasks", "values"],
    )
}
fn r_events() -> Value {
    obj(
        json!({"items": list_of(obj(json!({"seq": s_int(), "at": s_ts(), "by": {"type": "object"},
                                            "type": s_str()}), &["seq", "type"]))}),
        &["items"],
    )
}
fn r_inbox() -> Value {
    obj(
        json!({"items": list_of(obj(json!({"run_id": s_str(), "task_key": s_str(), "status": s_str()}),
                                    &["run_id", "task_key"]))}),
        &["items"],
    )
}
fn r_people() -> Value {
    obj(
        json!({"items": list_of(obj(json!({"email": s_str(), "name": s_str(), "admin": {"type": "boolean"},
                                            "roles": list_of(s_str())}), &["email", "roles"]))}),
        &["items"],
    )
}
fn r_otp() -> Value {
    obj(json!({"email": s_str(), "one_time_password": s_str()}), &["email", "one_time_password"])
}
fn r_token_row() -> Value {
    obj(
        json!({"id": s_str(), "name": s_str(), "kind": s_str(), "access": s_str(), "roles": list_of(s_str()),
               "created_by": s_str(), "created_at": s_ts(),
               "last_used_at": {"type": ["string", "null"]}, "revoked_at": {"type": ["string", "null"]}}),
        &["id", "name", "kind", "access"],
    )
}
fn r_tokens() -> Value {
    obj(json!({"items": list_of(r_token_row())}), &["items"])
}
fn r_new_token() -> Value {
    obj(json!({"id": s_str(), "token": s_str(), "name": s_str(), "access": s_str()}), &["id", "token"])
}
fn r_key() -> Value {
    obj(json!({"verifier_key": s_str()}), &["verifier_key"])
}
fn r_checkpoint() -> Value {
    obj(json!({"size": s_int(), "note": s_str(), "created_at": s_ts()}), &["size", "note"])
}
fn r_checkpoints() -> Value {
    obj(json!({"items": list_of(r_checkpoint())}), &["items"])
}
fn r_inclusion() -> Value {
    obj(
        json!({"index": s_int(), "size": s_int(), "leaf_hash": s_str(), "root": s_str(), "proof": list_of(s_str())}),
        &["index", "size", "root", "proof"],
    )
}
fn r_consistency() -> Value {
    obj(
        json!({"old_size": s_int(), "new_size": s_int(), "old_root": s_str(), "new_root": s_str(),
               "proof": list_of(s_str())}),
        &["old_size", "new_size", "proof"],
    )
}
fn r_verify() -> Value {
    obj(
        json!({"ok": {"type": "boolean"}, "entries": s_int(), "checkpoints": s_int(), "runs": s_int(),
               "evidence_files": s_int(), "findings": list_of(s_any())}),
        &["ok", "entries", "findings"],
    )
}

const P_RUNS: &[Param] = &[
    Param { name: "template", schema: s_str, description: "Only runs of this template key." },
    Param { name: "status", schema: s_status, description: "Only runs in this status." },
    Param { name: "limit", schema: s_limit, description: "Page size (default 50)." },
    Param { name: "cursor", schema: s_str, description: "The next_cursor of the previous page." },
];
const P_PERIOD: &[Param] = &[
    Param { name: "from", schema: s_str, description: "First day (YYYY-MM-DD) or instant (RFC 3339), inclusive." },
    Param { name: "to", schema: s_str, description: "Last day (YYYY-MM-DD) or instant (RFC 3339), inclusive." },
];
const P_INCLUSION: &[Param] = &[
    Param { name: "index", schema: s_index, description: "The entry's index." },
    Param { name: "size", schema: s_size, description: "The tree size (default: the current size)." },
];
const P_CONSISTENCY: &[Param] = &[
    Param { name: "old", schema: s_size, description: "The older tree size." },
    Param { name: "new", schema: s_size, description: "The newer tree size (default: the current size)." },
];

// ----- integrations (issue #6): webhooks and triggers -----

fn b_webhook() -> Value {
    strict(
        json!({
            "url": {"type": "string", "pattern": "^https?://", "minLength": 8, "maxLength": 2000},
            "template": {"type": ["string", "null"], "maxLength": 200},
            "event_types": {"type": "array", "maxItems": 64, "items": {"type": "string", "maxLength": 64}}
        }),
        &["url"],
    )
}
fn b_trigger() -> Value {
    strict(
        json!({
            "run_as": {"type": ["string", "null"], "maxLength": 320},
            "mapping": {"type": "array", "maxItems": 200, "items": strict(
                json!({"path": {"type": "string", "maxLength": 1000}, "field": {"type": "string", "maxLength": 63},
                       "required": {"type": "boolean"}}),
                &["path", "field"])}
        }),
        &[],
    )
}
fn b_payload() -> Value {
    json!({"type": "object", "description": "Any JSON object; the trigger's mapping picks fields out of it."})
}
fn s_nullable_str() -> Value {
    json!({"type": ["string", "null"]})
}
fn r_webhook() -> Value {
    obj(
        json!({"id": s_str(), "url": s_str(), "template": s_nullable_str(), "event_types": list_of(s_str()),
               "enabled": {"type": "boolean"}, "disabled_reason": s_nullable_str(), "disabled_at": s_nullable_str(),
               "created_by": s_str(), "created_at": s_ts(), "secret": s_str()}),
        &["id", "url", "event_types", "enabled"],
    )
}
fn r_webhooks() -> Value {
    obj(json!({"items": list_of(r_webhook())}), &["items"])
}
fn r_delivery() -> Value {
    obj(
        json!({"id": s_str(), "subscription": s_str(), "seq": s_int(), "run": s_nullable_str(), "event_type": s_str(),
               "status": {"type": "string", "enum": ["pending", "delivered", "failed"]}, "attempts": s_int(),
               "created_at": s_ts(), "retry_from": s_ts(), "next_attempt_at": s_nullable_str(),
               "delivered_at": s_nullable_str(), "last_status": {"type": ["integer", "null"]},
               "last_error": s_nullable_str(), "payload": s_any(), "attempt_log": list_of(s_any())}),
        &["id", "subscription", "seq", "event_type", "status", "attempts"],
    )
}
fn r_deliveries() -> Value {
    obj(json!({"items": list_of(r_delivery()), "next_cursor": {"type": ["integer", "null"]}}), &["items"])
}
fn r_trigger() -> Value {
    obj(
        json!({"template": s_str(), "run_as": s_str(), "mapping": list_of(s_any()), "created_by": s_str(),
               "created_at": s_ts(), "secret": s_str(), "url": s_str()}),
        &["template", "run_as", "mapping"],
    )
}
fn s_cursor() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": 9007199254740991_u64})
}
fn s_page() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 200})
}
const P_DELIVERIES: &[Param] = &[
    Param { name: "limit", schema: s_page, description: "Page size (default 50)." },
    Param { name: "cursor", schema: s_cursor, description: "The next_cursor of the previous page." },
];

macro_rules! route {
    ($m:literal, $p:literal, $a:ident, $tag:literal, $sum:literal, $body:expr, $q:expr, $ok:literal, $resp:expr) => {
        RouteSpec {
            method: $m,
            path: $p,
            action: Action::$a,
            tag: $tag,
            summary: $sum,
            body: $body,
            query: $q,
            ok: $ok,
            response: $resp,
        }
    };
}

/// A web page route: HTML in and out, so no schema.
macro_rules! page {
    ($m:literal, $p:literal, $a:ident, $sum:literal) => {
        RouteSpec {
            method: $m,
            path: $p,
            action: Action::$a,
            tag: PAGES,
            summary: $sum,
            body: BodyKind::None,
            query: &[],
            ok: 200,
            response: None,
        }
    };
}

use BodyKind::{Json as J, Multipart, None as NoBody};

pub static ROUTES: &[RouteSpec] = &[
    route!("GET", "/healthz", Public, "operations", "Liveness", NoBody, &[], 200, Some(r_health)),
    route!("GET", "/readyz", Public, "operations", "Readiness: the store answers", NoBody, &[], 200, Some(r_health)),
    route!("GET", "/metrics", Public, "operations", "Prometheus metrics", NoBody, &[], 200, None),
    route!("GET", "/api/openapi.json", Public, "operations", "This OpenAPI document", NoBody, &[], 200, None),
    route!("GET", "/api/docs", Public, "operations", "Human API docs (offline)", NoBody, &[], 200, None),
    route!(
        "POST",
        "/api/v1/auth/login",
        Public,
        "auth",
        "Sign in with email and password",
        J(b_login),
        &[],
        200,
        Some(r_login)
    ),
    route!("POST", "/api/v1/auth/logout", Session, "auth", "Sign out (ends the session)", NoBody, &[], 200, Some(r_ok)),
    route!(
        "POST",
        "/api/v1/auth/password",
        ChangePassword,
        "auth",
        "Change your password",
        J(b_password),
        &[],
        200,
        Some(r_login)
    ),
    route!("GET", "/api/v1/me", Session, "auth", "Who you are and what you may do", NoBody, &[], 200, Some(r_me)),
    route!("GET", "/api/v1/templates", Read, "templates", "List templates", NoBody, &[], 200, Some(r_templates)),
    route!(
        "POST",
        "/api/v1/templates",
        DesignTemplate,
        "templates",
        "Publish a template version",
        J(b_template),
        &[],
        201,
        Some(r_published)
    ),
    route!(
        "POST",
        "/api/v1/templates/validate",
        DesignTemplate,
        "templates",
        "Validate a template without publishing",
        J(b_template),
        &[],
        200,
        Some(r_validated)
    ),
    route!(
        "GET",
        "/api/v1/templates/{key}",
        Read,
        "templates",
        "The latest version of a template",
        NoBody,
        &[],
        200,
        Some(r_version)
    ),
    route!(
        "GET",
        "/api/v1/templates/{key}/versions",
        Read,
        "templates",
        "All versions of a template",
        NoBody,
        &[],
        200,
        Some(r_versions)
    ),
    route!(
        "GET",
        "/api/v1/templates/{key}/versions/{version}",
        Read,
        "templates",
        "One version of a template",
        NoBody,
        &[],
        200,
        Some(r_version)
    ),
    route!("GET", "/api/v1/runs", Read, "runs", "List runs, newest first", NoBody, P_RUNS, 200, Some(r_runs)),
    route!(
        "POST",
        "/api/v1/runs",
        StartRun,
        "runs",
        "Start a run of a template's latest version",
        J(b_start),
        &[],
        201,
        Some(r_run_state)
    ),
    route!("GET", "/api/v1/runs/{run}", Read, "runs", "A run with its tasks and fields", NoBody, &[], 200, Some(r_run)),
    route!("GET", "/api/v1/runs/{run}/events", Read, "runs", "A run's events", NoBody, &[], 200, Some(r_events)),
    route!(
        "POST",
        "/api/v1/runs/{run}/cancel",
        CancelRun,
        "runs",
        "Cancel a run",
        J(b_cancel),
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/fields",
        WorkTask,
        "tasks",
        "Set field values",
        J(b_values),
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/complete",
        WorkTask,
        "tasks",
        "Complete a task",
        J(b_complete),
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/approve",
        WorkTask,
        "tasks",
        "Approve an approval task",
        J(b_approve),
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/reject",
        WorkTask,
        "tasks",
        "Reject an approval task",
        J(b_comment_required),
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/comments",
        WorkTask,
        "tasks",
        "Comment on a task",
        J(b_text),
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/evidence",
        WorkTask,
        "tasks",
        "Upload an evidence file (multipart: file, field)",
        Multipart,
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "GET",
        "/api/v1/inbox",
        Read,
        "tasks",
        "Open tasks you may act on, overdue first",
        NoBody,
        &[],
        200,
        Some(r_inbox)
    ),
    route!("GET", "/api/v1/people", Read, "people", "People and their roles", NoBody, &[], 200, Some(r_people)),
    route!(
        "POST",
        "/api/v1/people",
        ManagePeople,
        "people",
        "Add a person (returns a one-time password)",
        J(b_person),
        &[],
        201,
        Some(r_otp)
    ),
    route!(
        "POST",
        "/api/v1/people/{email}/roles",
        ManagePeople,
        "people",
        "Grant a role",
        J(b_role),
        &[],
        200,
        Some(r_ok)
    ),
    route!(
        "DELETE",
        "/api/v1/people/{email}/roles/{role}",
        ManagePeople,
        "people",
        "Revoke a role",
        NoBody,
        &[],
        200,
        Some(r_ok)
    ),
    route!(
        "POST",
        "/api/v1/people/{email}/password-reset",
        ManagePeople,
        "people",
        "Issue a new one-time password",
        NoBody,
        &[],
        200,
        Some(r_otp)
    ),
    route!("GET", "/api/v1/tokens", ManageTokens, "tokens", "List API tokens", NoBody, &[], 200, Some(r_tokens)),
    route!(
        "POST",
        "/api/v1/tokens",
        ManageTokens,
        "tokens",
        "Create an API token (shown once)",
        J(b_token),
        &[],
        201,
        Some(r_new_token)
    ),
    route!(
        "DELETE",
        "/api/v1/tokens/{id}",
        ManageTokens,
        "tokens",
        "Revoke an API token",
        NoBody,
        &[],
        200,
        Some(r_ok)
    ),
    route!("GET", "/api/v1/audit/key", Audit, "audit", "The checkpoint verifier key", NoBody, &[], 200, Some(r_key)),
    route!(
        "GET",
        "/api/v1/audit/checkpoints",
        Audit,
        "audit",
        "Signed checkpoints",
        NoBody,
        &[],
        200,
        Some(r_checkpoints)
    ),
    route!(
        "POST",
        "/api/v1/audit/checkpoints",
        SignCheckpoint,
        "audit",
        "Sign a checkpoint now",
        NoBody,
        &[],
        201,
        Some(r_checkpoint)
    ),
    route!(
        "GET",
        "/api/v1/audit/proofs/inclusion",
        Audit,
        "audit",
        "Inclusion proof of an entry",
        NoBody,
        P_INCLUSION,
        200,
        Some(r_inclusion)
    ),
    route!(
        "GET",
        "/api/v1/audit/proofs/consistency",
        Audit,
        "audit",
        "Consistency proof between two sizes",
        NoBody,
        P_CONSISTENCY,
        200,
        Some(r_consistency)
    ),
    route!(
        "GET",
        "/api/v1/audit/verify",
        Audit,
        "audit",
        "Verify the whole ledger, checkpoints, runs and evidence",
        NoBody,
        &[],
        200,
        Some(r_verify)
    ),
    route!(
        "GET",
        "/api/v1/audit/runs/{run}/export",
        Audit,
        "audit",
        "Evidence pack of one run (zip; verify it with `attest verify`)",
        NoBody,
        &[],
        200,
        None
    ),
    route!(
        "GET",
        "/api/v1/audit/export",
        Audit,
        "audit",
        "Evidence pack of an audit period (zip; verify it with `attest verify`)",
        NoBody,
        P_PERIOD,
        200,
        None
    ), // ----- process metrics (metrics_api.rs) -----
    route!(
        "GET",
        "/api/v1/metrics",
        Read,
        "metrics",
        "Every template's headline process metrics over a period",
        NoBody,
        crate::metrics_api::P_OVERVIEW,
        200,
        Some(crate::metrics_api::r_overview)
    ),
    route!(
        "GET",
        "/api/v1/metrics/templates/{key}",
        Read,
        "metrics",
        "A template's process metrics over a period (all versions, or one)",
        NoBody,
        crate::metrics_api::P_TEMPLATE,
        200,
        Some(crate::metrics_api::r_template_metrics)
    ),
    route!(
        "GET",
        "/api/v1/metrics/templates/{key}/compare",
        Read,
        "metrics",
        "Two versions of a template side by side over a period",
        NoBody,
        crate::metrics_api::P_COMPARE,
        200,
        Some(crate::metrics_api::r_comparison)
    ),
    // ----- web app pages (crate::web): HTML forms, not part of the OpenAPI document -----
    page!("GET", "/", Read, "My work"),
    page!("GET", "/login", Public, "Sign-in form"),
    page!("POST", "/login", Public, "Sign in"),
    page!("POST", "/logout", Session, "Sign out"),
    page!("GET", "/account/password", ChangePassword, "Change-password form"),
    page!("POST", "/account/password", ChangePassword, "Change your password"),
    page!("GET", "/account/time-zone", Session, "Your time zone form"),
    page!("POST", "/account/time-zone", Session, "Choose the time zone you see times in"),
    page!("GET", "/assets/{file}", Public, "Stylesheet and script"),
    page!("GET", "/runs", Read, "Runs list with filters"),
    page!("GET", "/runs.csv", Read, "Runs list as CSV"),
    page!("GET", "/runs/new", StartRun, "Start-a-run form"),
    page!("POST", "/runs", StartRun, "Start a run"),
    page!("GET", "/runs/{run}", Read, "A run as a checklist"),
    page!("POST", "/runs/{run}/cancel", CancelRun, "Cancel a run"),
    page!("POST", "/runs/{run}/tasks/{task}", WorkTask, "Save or complete a task's form"),
    page!("POST", "/runs/{run}/tasks/{task}/preview", WorkTask, "Which tasks and fields the form's values show"),
    page!("POST", "/runs/{run}/tasks/{task}/decision", WorkTask, "Approve or reject"),
    page!("POST", "/runs/{run}/tasks/{task}/comments", WorkTask, "Comment on a task"),
    page!("POST", "/runs/{run}/tasks/{task}/evidence", WorkTask, "Upload evidence"),
    page!("GET", "/audit", Audit, "Checkpoints, verifier key, exports"),
    page!("GET", "/audit/verify", Audit, "Verify the ledger now"),
    page!("GET", "/audit/proofs/{index}", Audit, "Inclusion proof of a ledger entry"),
    page!("GET", "/audit/runs/{run}/pack", Audit, "Evidence pack of a run"),
    page!("GET", "/audit/pack", Audit, "Evidence pack of a period"),
    page!("GET", "/admin/people", ManagePeople, "People and roles"),
    page!("POST", "/admin/people", ManagePeople, "Add a person"),
    page!("POST", "/admin/people/{email}/roles", ManagePeople, "Grant a role"),
    page!("POST", "/admin/people/{email}/roles/{role}/revoke", ManagePeople, "Revoke a role"),
    page!("POST", "/admin/people/{email}/password-reset", ManagePeople, "Issue a one-time password"),
    // process-metrics dashboards (web/metrics.rs)
    page!("GET", "/dashboards", Read, "Process metrics of every template"),
    page!("GET", "/dashboards/templates/{key}", Read, "A template's process-metrics dashboard"),
    page!("GET", "/dashboards/templates/{key}/compare", Read, "Two template versions side by side"),
    page!("GET", "/admin/tokens", ManageTokens, "API tokens"),
    page!("POST", "/admin/tokens", ManageTokens, "Create an API token"),
    page!("POST", "/admin/tokens/{id}/revoke", ManageTokens, "Revoke an API token"),
    // ----- template pages and the template editor (crate::web::templates, crate::web::drafts) -----
    page!("GET", "/templates", Read, "Templates with owner, version, open runs and policy"),
    page!("GET", "/templates/{key}", Read, "A template: diagram, checklist, controls, versions"),
    page!("GET", "/templates/{key}/diff", Read, "What changed between two versions"),
    page!("POST", "/templates/{key}/drafts", DesignTemplate, "Draft the next version of a template"),
    page!("GET", "/drafts/new", DesignTemplate, "New-template form"),
    page!("POST", "/drafts", DesignTemplate, "Create a draft of a new template"),
    page!("GET", "/drafts/{draft}", DesignTemplate, "The template editor"),
    page!("POST", "/drafts/{draft}", DesignTemplate, "Save, change, validate or publish a draft"),
    page!("GET", "/drafts/{draft}/yaml", DesignTemplate, "A draft as YAML"),
    page!("POST", "/drafts/{draft}/yaml", DesignTemplate, "Save, validate or publish a draft's YAML"),
    page!("POST", "/drafts/{draft}/discard", DesignTemplate, "Discard a draft"),
    // ----- schedules, webhooks and trigger URLs (crate::web::schedules, crate::web::hooks) -----
    page!("GET", "/schedules", Read, "Schedules with their next run"),
    page!("POST", "/schedules", DesignTemplate, "Create a schedule"),
    page!("POST", "/schedules/{id}/pause", DesignTemplate, "Pause a schedule"),
    page!("POST", "/schedules/{id}/resume", DesignTemplate, "Resume a schedule"),
    page!("POST", "/schedules/{id}/delete", DesignTemplate, "Delete a schedule"),
    page!("GET", "/admin/webhooks", ManageWebhooks, "Webhook subscriptions"),
    page!("POST", "/admin/webhooks", ManageWebhooks, "Add a webhook (the secret is shown once)"),
    page!("GET", "/admin/webhooks/{id}", ManageWebhooks, "A webhook's delivery log"),
    page!("POST", "/admin/webhooks/{id}/enable", ManageWebhooks, "Enable a webhook"),
    page!("POST", "/admin/webhooks/{id}/disable", ManageWebhooks, "Disable a webhook"),
    page!("POST", "/admin/webhooks/{id}/delete", ManageWebhooks, "Delete a webhook"),
    page!("POST", "/admin/webhooks/{id}/deliveries/{delivery}/redeliver", ManageWebhooks, "Send a delivery again"),
    page!("GET", "/templates/{key}/trigger", DesignTemplate, "A template's trigger URL and mapping"),
    page!("POST", "/templates/{key}/trigger", DesignTemplate, "Create, rotate or change a trigger URL"),
    page!("POST", "/templates/{key}/trigger/revoke", DesignTemplate, "Revoke a trigger URL"),
    // ----- scheduling: schedules, workspace settings, mail -----
    route!("GET", "/api/v1/schedules", Read, "schedules", "List schedules", NoBody, &[], 200, Some(r_schedules)),
    route!(
        "POST",
        "/api/v1/schedules",
        DesignTemplate,
        "schedules",
        "Create a schedule: recurring runs of a template",
        J(b_schedule),
        &[],
        201,
        Some(r_schedule)
    ),
    route!("GET", "/api/v1/schedules/{id}", Read, "schedules", "One schedule", NoBody, &[], 200, Some(r_schedule)),
    route!(
        "DELETE",
        "/api/v1/schedules/{id}",
        DesignTemplate,
        "schedules",
        "Delete a schedule (runs it started stay)",
        NoBody,
        &[],
        200,
        Some(r_ok)
    ),
    route!(
        "POST",
        "/api/v1/schedules/{id}/pause",
        DesignTemplate,
        "schedules",
        "Pause a schedule",
        NoBody,
        &[],
        200,
        Some(r_schedule)
    ),
    route!(
        "POST",
        "/api/v1/schedules/{id}/resume",
        DesignTemplate,
        "schedules",
        "Resume a schedule from its next occurrence (missed ones do not fire)",
        NoBody,
        &[],
        200,
        Some(r_schedule)
    ),
    route!(
        "GET",
        "/api/v1/settings",
        ManageWorkspace,
        "settings",
        "Workspace settings: time zone and mail (the SMTP password is never shown)",
        NoBody,
        &[],
        200,
        Some(r_settings)
    ),
    route!(
        "POST",
        "/api/v1/settings/time-zone",
        ManageWorkspace,
        "settings",
        "Set the workspace time zone (due dates and business days count in it)",
        J(b_time_zone),
        &[],
        200,
        Some(r_settings)
    ),
    route!(
        "POST",
        "/api/v1/settings/mail",
        ManageWorkspace,
        "settings",
        "Set the SMTP settings and the base URL for links in mail",
        J(b_mail_settings),
        &[],
        200,
        Some(r_settings)
    ),
    route!(
        "GET",
        "/api/v1/mail/outbox",
        ManageWorkspace,
        "settings",
        "Mail waiting, sent or failed, with the last error of each",
        NoBody,
        P_OUTBOX,
        200,
        Some(r_outbox)
    ),
    route!("GET", "/api/v1/me/mail", Session, "auth", "Your mail preference", NoBody, &[], 200, Some(r_mail_pref)),
    route!(
        "GET",
        "/api/v1/me/time-zone",
        Session,
        "auth",
        "The time zone you see times in (yours, else the workspace's)",
        NoBody,
        &[],
        200,
        Some(r_my_time_zone)
    ),
    route!(
        "POST",
        "/api/v1/me/time-zone",
        Session,
        "auth",
        "Choose your time zone, or null for the workspace's",
        J(b_my_time_zone),
        &[],
        200,
        Some(r_my_time_zone)
    ),
    route!(
        "POST",
        "/api/v1/me/mail",
        Session,
        "auth",
        "Opt out of (or back into) non-essential mail",
        J(b_mail_pref),
        &[],
        200,
        Some(r_mail_pref)
    ),
    // ----- integrations (issue #6): webhooks, triggers, service tasks -----
    route!(
        "POST",
        "/api/v1/runs/{run}/tasks/{task}/retry",
        WorkTask,
        "tasks",
        "Make a failed service task's call again",
        NoBody,
        &[],
        200,
        Some(r_run_state)
    ),
    route!(
        "GET",
        "/api/v1/webhooks",
        ManageWebhooks,
        "webhooks",
        "List webhook subscriptions",
        NoBody,
        &[],
        200,
        Some(r_webhooks)
    ),
    route!(
        "POST",
        "/api/v1/webhooks",
        ManageWebhooks,
        "webhooks",
        "Subscribe a URL to events (the signing secret is shown once)",
        J(b_webhook),
        &[],
        201,
        Some(r_webhook)
    ),
    route!(
        "GET",
        "/api/v1/webhooks/{id}",
        ManageWebhooks,
        "webhooks",
        "One subscription",
        NoBody,
        &[],
        200,
        Some(r_webhook)
    ),
    route!(
        "DELETE",
        "/api/v1/webhooks/{id}",
        ManageWebhooks,
        "webhooks",
        "Delete a subscription",
        NoBody,
        &[],
        200,
        Some(r_ok)
    ),
    route!(
        "POST",
        "/api/v1/webhooks/{id}/enable",
        ManageWebhooks,
        "webhooks",
        "Enable a subscription again after it was disabled",
        NoBody,
        &[],
        200,
        Some(r_webhook)
    ),
    route!(
        "POST",
        "/api/v1/webhooks/{id}/disable",
        ManageWebhooks,
        "webhooks",
        "Stop deliveries to a subscription until it is enabled",
        NoBody,
        &[],
        200,
        Some(r_webhook)
    ),
    route!(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        ManageWebhooks,
        "webhooks",
        "The delivery log, newest first",
        NoBody,
        P_DELIVERIES,
        200,
        Some(r_deliveries)
    ),
    route!(
        "GET",
        "/api/v1/webhooks/{id}/deliveries/{delivery}",
        ManageWebhooks,
        "webhooks",
        "One delivery with its payload and every attempt",
        NoBody,
        &[],
        200,
        Some(r_delivery)
    ),
    route!(
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
        ManageWebhooks,
        "webhooks",
        "Send a delivery again (same webhook-id)",
        NoBody,
        &[],
        200,
        Some(r_delivery)
    ),
    route!(
        "GET",
        "/api/v1/templates/{key}/trigger",
        DesignTemplate,
        "triggers",
        "A template's trigger",
        NoBody,
        &[],
        200,
        Some(r_trigger)
    ),
    route!(
        "PUT",
        "/api/v1/templates/{key}/trigger",
        DesignTemplate,
        "triggers",
        "Set a template's trigger URL and mapping (the secret is shown once)",
        J(b_trigger),
        &[],
        201,
        Some(r_trigger)
    ),
    route!(
        "DELETE",
        "/api/v1/templates/{key}/trigger",
        DesignTemplate,
        "triggers",
        "Remove a template's trigger URL",
        NoBody,
        &[],
        200,
        Some(r_ok)
    ),
    route!(
        "POST",
        "/api/v1/templates/{key}/trigger",
        StartRun,
        "triggers",
        "Start a run from a JSON payload through the trigger's mapping",
        J(b_payload),
        &[],
        201,
        Some(r_run_state)
    ),
    route!(
        "POST",
        "/hooks/triggers/{template}/{secret}",
        Public,
        "triggers",
        "The secret trigger URL: start a run from a JSON payload (401 for a wrong secret)",
        J(b_payload),
        &[],
        201,
        Some(r_run_state)
    ),
];

// ----- scheduling schemas -----

fn s_nullable_ts() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}
fn s_rule() -> Value {
    json!({"oneOf": [
        strict(json!({"cron": {"type": "string", "minLength": 1, "maxLength": 200,
                               "description": "Five fields: minute hour day-of-month month day-of-week."}}), &["cron"]),
        strict(json!({
            "every": {"type": "string", "enum": ["daily", "weekly", "monthly", "quarterly"]},
            "at": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "description": "Time of day, HH:MM."},
            "weekday": {"type": ["string", "null"],
                        "enum": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", null]},
            "day": {"type": ["integer", "null"], "minimum": 1, "maximum": 31}
        }), &["every", "at"])
    ]})
}
fn b_schedule() -> Value {
    strict(
        json!({
            "template": {"type": "string", "minLength": 1, "maxLength": 200},
            "name_pattern": {"type": "string", "minLength": 1, "maxLength": 200,
                             "description": "Run name; {year}, {quarter}, {month}, {month_name}, {day}, {date} are filled in."},
            "rule": s_rule(),
            "time_zone": {"type": "string", "minLength": 1, "maxLength": 64, "description": "IANA name, e.g. Europe/Berlin."},
            "starts_as": {"type": "string", "format": "email", "maxLength": 320},
            "due_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 366,
                         "description": "Each run is due this many days after its scheduled start."},
            "due_business_days": {"type": "boolean", "description": "Count due_days Monday to Friday."}
        }),
        &["template", "name_pattern", "rule", "time_zone", "starts_as"],
    )
}
fn r_schedule() -> Value {
    obj(
        json!({"id": s_str(), "template": s_str(), "name_pattern": s_str(), "rule": {"type": "object"},
               "time_zone": s_str(), "starts_as": s_str(), "paused": {"type": "boolean"},
               "next_at": s_nullable_ts(), "last_fired_at": s_nullable_ts(), "created_by": s_str(),
               "created_at": s_ts(), "due_days": {"type": ["integer", "null"]},
               "due_business_days": {"type": "boolean"}}),
        &["id", "template", "name_pattern", "rule", "time_zone", "starts_as", "paused"],
    )
}
fn r_schedules() -> Value {
    obj(json!({"items": list_of(r_schedule())}), &["items"])
}
fn b_time_zone() -> Value {
    strict(json!({"time_zone": {"type": "string", "minLength": 1, "maxLength": 64}}), &["time_zone"])
}
fn b_mail_settings() -> Value {
    strict(
        json!({
            "smtp_host": {"type": "string", "minLength": 1, "maxLength": 253},
            "smtp_port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "tls": {"type": "string", "enum": ["none", "starttls", "tls"]},
            "from": {"type": "string", "minLength": 3, "maxLength": 320},
            "username": {"type": ["string", "null"], "maxLength": 320},
            "password": {"type": ["string", "null"], "maxLength": 1024},
            "base_url": {"type": "string", "minLength": 8, "maxLength": 2000}
        }),
        &["smtp_host", "smtp_port", "tls", "from", "base_url"],
    )
}
fn r_settings() -> Value {
    obj(
        json!({"time_zone": s_str(),
               "mail": {"type": ["object", "null"], "properties": {
                   "smtp_host": s_str(), "smtp_port": s_int(), "tls": s_str(), "from": s_str(),
                   "username": {"type": ["string", "null"]}, "password_set": {"type": "boolean"},
                   "base_url": s_str()}}}),
        &["time_zone", "mail"],
    )
}
const P_OUTBOX: &[Param] = &[
    Param { name: "state", schema: s_job_state, description: "Only mail in this state." },
    Param { name: "failing", schema: s_bool, description: "Only mail whose sending failed at least once." },
    Param { name: "limit", schema: s_limit, description: "Page size (default 50)." },
];
fn s_job_state() -> Value {
    json!({"type": "string", "enum": ["pending", "done", "failed"]})
}
fn s_bool() -> Value {
    json!({"type": "boolean"})
}
fn r_outbox() -> Value {
    obj(
        json!({"items": list_of(obj(json!({
            "id": s_int(), "kind": {"type": ["string", "null"]}, "to": {"type": ["string", "null"]},
            "subject": {"type": ["string", "null"]}, "state": s_job_state(), "attempts": s_int(),
            "last_error": {"type": ["string", "null"]}, "next_attempt_at": s_ts(), "created_at": s_ts(),
            "finished_at": s_nullable_ts()}), &["id", "state", "attempts"]))}),
        &["items"],
    )
}
fn b_my_time_zone() -> Value {
    strict(json!({"time_zone": {"type": ["string", "null"], "maxLength": 64}}), &["time_zone"])
}
fn r_my_time_zone() -> Value {
    obj(json!({"time_zone": {"type": ["string", "null"]}, "effective": s_str()}), &["time_zone", "effective"])
}
fn b_mail_pref() -> Value {
    strict(json!({"opt_out": {"type": "boolean"}}), &["opt_out"])
}
fn r_mail_pref() -> Value {
    obj(json!({"opt_out": {"type": "boolean"}}), &["opt_out"])
}
