//! The OpenAPI 3.1 document, generated from the route table, and a docs page
//! that renders it without any network access (no CDN).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::access::{Action, allowed};
use crate::routes::{BodyKind, ROUTES};

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details. Refusals carry the engine rule that refused.",
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "rule": {"type": "string"}, "task": {"type": "string"},
            "field": {"type": "string"}
        },
        "required": ["type", "title", "status", "detail"]
    })
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn operation(spec: &crate::routes::RouteSpec) -> Value {
    let mut op = Map::new();
    op.insert(
        "operationId".into(),
        json!(format!("{}{}", spec.method.to_ascii_lowercase(), spec.path.replace(['/', '{', '}', '.', '-'], "_"))),
    );
    op.insert("summary".into(), json!(spec.summary));
    op.insert("tags".into(), json!([spec.tag]));
    let who: Vec<&str> = allowed(spec.action).iter().map(|a| a.as_str()).collect();
    let description = match spec.action {
        Action::Public => "Open to anyone.".to_string(),
        _ => format!("Allowed for: {}.", who.join(", ")),
    };
    op.insert("description".into(), json!(description));
    let mut params = path_params(spec.path);
    for q in spec.query {
        let required = matches!(q.name, "index" | "old" | "from" | "to");
        params.push(json!({"name": q.name, "in": "query", "required": required, "schema": (q.schema)(),
                           "description": q.description}));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    match spec.body {
        BodyKind::None => {}
        BodyKind::Json(schema) => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": schema()}}}),
            );
        }
        BodyKind::Multipart => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"multipart/form-data": {"schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "field": {"type": "string", "maxLength": 200}
                    },
                    "required": ["file"]
                }}}}),
            );
        }
    }
    let mut responses = Map::new();
    let ok = match (spec.response, spec.path) {
        (Some(schema), _) => json!({"description": "Success", "content": {"application/json": {"schema": schema()}}}),
        (None, "/metrics") => {
            json!({"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        (None, "/api/docs") => json!({"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}),
        (None, path) if path.ends_with("/export") => json!({"description": "Evidence pack (zip)",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}),
        (None, _) => {
            json!({"description": "OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}})
        }
    };
    responses.insert(spec.ok.to_string(), ok);
    if spec.path == "/readyz" {
        responses.insert(
            "503".into(),
            json!({"description": "Not ready", "content": {"application/json": {"schema": {"type": "object"}}}}),
        );
    }
    if spec.is_api() {
        for (code, what) in [
            ("400", "Bad input"),
            ("401", "Not signed in, or the credential is unknown, expired or revoked"),
            ("403", "Signed in, but this access level may not do this"),
            ("404", "Unknown id"),
            ("405", "Method not allowed"),
            ("409", "Conflict: the state moved (already completed, run not open, concurrent change)"),
            ("413", "Body or upload too large"),
            ("415", "Wrong content type"),
            ("422", "Refused by a rule (see `rule`)"),
            ("429", "Too many failed logins, or too many calls of a trigger URL (see Retry-After)"),
            ("503", "Shutting down"),
        ] {
            responses.insert(code.into(), problem_response(what));
        }
    }
    op.insert("responses".into(), Value::Object(responses));
    if spec.action != Action::Public {
        op.insert("security".into(), json!([{"bearer": []}, {"session": []}]));
    } else {
        op.insert("security".into(), json!([]));
    }
    Value::Object(op)
}

pub fn openapi() -> Value {
    let mut paths = Map::new();
    for spec in ROUTES.iter().filter(|r| !r.is_page()) {
        let entry = paths.entry(spec.path.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(spec.method.to_ascii_lowercase(), operation(spec));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Attest API",
            "version": "1",
            "description": "Compliance workflows with built-in enforcement and audit-ready proof. \
                Authenticate with `Authorization: Bearer TOKEN` (API tokens) or a session cookie from \
                /api/v1/auth/login (send its csrf_token as X-CSRF-Token on POST and DELETE). \
                Errors are application/problem+json; refusals name the engine rule. POSTs honour Idempotency-Key."
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": problem_schema()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::authn::SESSION_COOKIE}
            }
        }
    })
}

pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_string_pretty(&openapi()).unwrap_or_default()).clone()
}

pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Attest API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:0}code,pre{font:13px ui-monospace,monospace;background:#f5f5f5}
pre{padding:.5rem;overflow:auto}details{border-top:1px solid #ddd;padding:.4rem 0}
summary{cursor:pointer}.m{display:inline-block;width:4.5rem;font-weight:bold}
.GET{color:#1a7f37}.POST{color:#0550ae}.DELETE{color:#cf222e}.who{color:#666;font-size:90%}
</style></head><body>
<h1>Attest API</h1><p id="desc">Loading <a href="/api/openapi.json">/api/openapi.json</a>…</p>
<div id="ops"></div>
<script>
fetch('/api/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('desc').textContent = doc.info.description;
  const ops = document.getElementById('ops');
  const tags = {};
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [m, op] of Object.entries(methods)) (tags[op.tags[0]] ||= []).push([m.toUpperCase(), path, op]);
  for (const [tag, list] of Object.entries(tags)) {
    const h = document.createElement('h2'); h.textContent = tag; ops.appendChild(h);
    for (const [m, path, op] of list) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      s.innerHTML = `<span class="m ${m}"></span><code></code> — <span></span> <span class="who"></span>`;
      s.children[0].textContent = m; s.children[1].textContent = path;
      s.children[2].textContent = op.summary; s.children[3].textContent = op.description;
      d.appendChild(s);
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
        responses: Object.fromEntries(Object.entries(op.responses).filter(([c]) => c < '300'))}, null, 2);
      d.appendChild(pre); ops.appendChild(d);
    }
  }
});
</script></body></html>
"#;
