//! Service tasks: the request a task's `http` call makes from the run's
//! values, what its response fills in, and which failures are worth
//! retrying. Pure: the server's executor does the HTTP and the waiting.

use attest_engine::Values;
use attest_template::HttpCall;
use serde_json::Value;

/// A rendered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    pub method: &'static str,
    pub url: String,
    /// JSON text, when the call has a body.
    pub body: Option<String>,
}

/// The text a value stands for inside a longer string.
fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Replaces each `{{key}}` in `s` by `render(key)`.
fn substitute(s: &str, render: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        out.push_str(&render(after[..end].trim()));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn render_value(v: &Value, values: &Values) -> Value {
    match v {
        Value::String(s) => {
            let whole = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")).map(str::trim);
            match whole.filter(|k| !k.contains("{{") && !k.contains("}}")) {
                Some(key) => values.get(key).cloned().unwrap_or(Value::Null),
                None => Value::String(substitute(s, &|k| text_of(values.get(k)))),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| render_value(i, values)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, i)| (k.clone(), render_value(i, values))).collect()),
        other => other.clone(),
    }
}

/// The request for a call with the run's values.
pub fn render(call: &HttpCall, values: &Values) -> ServiceRequest {
    let url = substitute(&call.url, &|k| percent_encode(&text_of(values.get(k))));
    let body = call.body.as_ref().map(|b| render_value(b, values).to_string());
    ServiceRequest { method: call.method.as_str(), url, body }
}

/// The task's values from a successful response: each mapped pointer must
/// be present in the JSON body.
pub fn map_response(call: &HttpCall, body: &[u8]) -> Result<Values, String> {
    if call.response.is_empty() {
        return Ok(Values::new());
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("the response is not JSON: {e}"))?;
    let mut values = Values::new();
    for (field, pointer) in &call.response {
        let v =
            json.pointer(pointer).ok_or_else(|| format!("the response has no value at {pointer} (for '{field}')"))?;
        values.insert(field.clone(), v.clone());
    }
    Ok(values)
}

/// Whether a failed attempt may succeed if made again: no answer (connection
/// refused, timeout) or a 408, 429 or 5xx. Any other status is final.
pub fn is_transient(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 408 || s == 429 || s >= 500,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(url: &str, body: Option<Value>, response: &[(&str, &str)]) -> HttpCall {
        let mut c: HttpCall = serde_json::from_value(json!({"url": url})).unwrap_or_else(|e| panic!("{e}"));
        c.body = body;
        c.response = response.iter().map(|(f, p)| (f.to_string(), p.to_string())).collect();
        c
    }

    #[test]
    fn placeholders_take_values_whole_or_as_text() {
        let values: Values =
            [("vendor".to_string(), json!("Acme & Co")), ("amount".to_string(), json!(2500))].into_iter().collect();
        let c = call(
            "https://erp.example.com/v?name={{vendor}}",
            Some(
                json!({"name": "{{vendor}}", "spend": "{{amount}}", "note": "{{vendor}} owes {{amount}}", "none": "{{x}}"}),
            ),
            &[],
        );
        let r = render(&c, &values);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://erp.example.com/v?name=Acme%20%26%20Co");
        let body: Value = serde_json::from_str(r.body.as_deref().unwrap_or("null")).unwrap_or_default();
        assert_eq!(body, json!({"name": "Acme & Co", "spend": 2500, "note": "Acme & Co owes 2500", "none": null}));
    }

    #[test]
    fn responses_fill_mapped_fields_or_name_the_missing_pointer() {
        let c = call("https://x.example/", None, &[("vendor_id", "/data/id")]);
        let values = map_response(&c, br#"{"data": {"id": "V-7"}}"#).unwrap_or_default();
        assert_eq!(values.get("vendor_id"), Some(&json!("V-7")));
        let missing = map_response(&c, br#"{"data": {}}"#).unwrap_err();
        assert!(missing.contains("/data/id"), "{missing}");
        assert!(map_response(&c, b"<html>").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn only_unanswered_and_server_side_failures_are_retried() {
        assert!(is_transient(None));
        assert!(is_transient(Some(503)) && is_transient(Some(429)) && is_transient(Some(408)));
        assert!(!is_transient(Some(400)) && !is_transient(Some(404)) && !is_transient(Some(302)));
    }
}
