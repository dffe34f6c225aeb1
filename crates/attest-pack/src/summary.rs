//! `summary.html`: the pack in words for a person, in one self-contained page
//! (inline style, no scripts, no external assets, every text escaped). It is a
//! rendering, not evidence: the verifier only checks its hash.

use std::fmt::Write as _;

use attest_core::html::escape as esc;
use attest_engine::{Actor, EventBody, WorkspaceEventBody};
use attest_store::{EntryEvent, LedgerEntry};

use crate::layout::{Manifest, PackKind, file_path};

/// What the page shows besides the manifest.
#[derive(Debug)]
pub struct SummaryInput<'a> {
    pub manifest: &'a Manifest,
    pub entries: &'a [LedgerEntry],
    pub key: &'a str,
    /// `(template key, version, template name)` of every template in the pack.
    pub template_names: &'a [(String, u32, String)],
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;\
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f3f3f3}code,.hash{font-family:ui-monospace,monospace;\
font-size:.8rem;word-break:break-all}.approved{color:#060}.rejected{color:#a00}pre{background:#f6f6f6;padding:.75rem;\
overflow-x:auto}";

pub fn render(input: &SummaryInput<'_>) -> String {
    let m = input.manifest;
    let title = match (&m.kind, &m.run, &m.period) {
        (PackKind::Run, Some(run), _) => format!("Evidence pack: run \u{201c}{}\u{201d}", run.name),
        (PackKind::Period, _, Some(p)) => format!("Evidence pack: {} to {}", p.from, p.to),
        _ => "Evidence pack".to_string(),
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    overview(&mut h, input);
    timeline(&mut h, input.entries);
    approvals(&mut h, input.entries);
    evidence(&mut h, input.entries);
    instructions(&mut h, m, input.key);
    h.push_str("</body></html>\n");
    h
}

fn overview(h: &mut String, input: &SummaryInput<'_>) {
    let m = input.manifest;
    h.push_str("<h2>Overview</h2><table>");
    row(h, "Workspace", &esc(&m.workspace));
    row(h, "Log origin", &format!("<code>{}</code>", esc(&m.origin)));
    row(h, "Exported", &esc(&m.created_at.to_string()));
    if let Some(run) = &m.run {
        row(h, "Run", &format!("{} <code>{}</code>", esc(&run.name), esc(&run.id)));
        row(h, "Events", &run.events.to_string());
    }
    if let Some(p) = &m.period {
        row(h, "Period (UTC, inclusive)", &format!("{} to {}", esc(&p.from.to_string()), esc(&p.to.to_string())));
        row(
            h,
            "Ledger entries of the period",
            &format!("{} (entries {} to {})", p.end_seq - p.first_seq, p.first_seq, p.end_seq.saturating_sub(1)),
        );
    }
    for t in &m.templates {
        let name = input
            .template_names
            .iter()
            .find(|(key, version, _)| *key == t.key && *version == t.version)
            .map(|(_, _, name)| name.as_str())
            .unwrap_or_default();
        row(
            h,
            "Template",
            &format!(
                "{} ({} v{}), <span class=\"hash\">{}</span>",
                esc(name),
                esc(&t.key),
                t.version,
                esc(&t.content_hash)
            ),
        );
    }
    for cp in &m.checkpoints {
        row(
            h,
            "Signed checkpoint",
            &format!("<code>{}</code> over the first {} ledger entries", esc(&cp.path), cp.size),
        );
    }
    row(h, "Verifier key", &format!("<code>{}</code>", esc(input.key)));
    h.push_str("</table>\n");
}

fn timeline(h: &mut String, entries: &[LedgerEntry]) {
    h.push_str("<h2>Who did what, when</h2><table><tr><th>#</th><th>When (UTC)</th><th>Who</th><th>What</th></tr>");
    for entry in entries {
        let (at, by, what) = match &entry.event {
            EntryEvent::Run(e) => (e.at, &e.by, run_event_text(&e.body)),
            EntryEvent::Workspace(e) => (e.at, &e.by, workspace_event_text(&e.body)),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            entry.seq,
            esc(&at.to_string()),
            esc(&actor_text(by)),
            esc(&what)
        );
    }
    h.push_str("</table>\n");
}

fn approvals(h: &mut String, entries: &[LedgerEntry]) {
    let decisions: Vec<_> = entries
        .iter()
        .filter_map(|entry| match &entry.event {
            EntryEvent::Run(e) => match &e.body {
                EventBody::TaskApproved { task, comment, overridden } => {
                    Some((entry, e, "approved", task, comment.clone().unwrap_or_default(), *overridden))
                }
                EventBody::TaskRejected { task, comment, overridden, .. } => {
                    Some((entry, e, "rejected", task, comment.clone(), *overridden))
                }
                _ => None,
            },
            EntryEvent::Workspace(_) => None,
        })
        .collect();
    h.push_str("<h2>Approvals</h2>");
    if decisions.is_empty() {
        h.push_str("<p>No approval decisions in this pack.</p>\n");
        return;
    }
    h.push_str(
        "<table><tr><th>#</th><th>Approval</th><th>Decision</th><th>By</th><th>When (UTC)</th><th>Comment</th></tr>",
    );
    for (entry, e, decision, task, comment, overridden) in decisions {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{decision}\">{decision}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            entry.seq,
            esc(task),
            if overridden { " (admin override)" } else { "" },
            esc(&actor_text(&e.by)),
            esc(&e.at.to_string()),
            esc(&comment)
        );
    }
    h.push_str("</table>\n");
}

fn evidence(h: &mut String, entries: &[LedgerEntry]) {
    h.push_str("<h2>Evidence files</h2>");
    let files: Vec<_> = entries
        .iter()
        .filter_map(|entry| match &entry.event {
            EntryEvent::Run(e) => match &e.body {
                EventBody::EvidenceAttached { task, file, .. } => Some((entry.seq, e, task, file)),
                _ => None,
            },
            EntryEvent::Workspace(_) => None,
        })
        .collect();
    if files.is_empty() {
        h.push_str("<p>No evidence files in this pack.</p>\n");
        return;
    }
    h.push_str("<table><tr><th>#</th><th>File</th><th>Task</th><th>Attached by</th><th>Size</th><th>SHA-256 and place in the pack</th></tr>");
    for (seq, e, task, file) in files {
        let _ = write!(
            h,
            "<tr><td>{seq}</td><td>{} ({})</td><td>{}</td><td>{} at {}</td><td>{} bytes</td><td><span class=\"hash\">{}</span><br><code>{}</code></td></tr>",
            esc(&file.name),
            esc(&file.media_type),
            esc(task),
            esc(&actor_text(&e.by)),
            esc(&e.at.to_string()),
            file.size,
            esc(&file.sha256),
            esc(&file_path(&file.sha256))
        );
    }
    h.push_str("</table>\n");
}

fn instructions(h: &mut String, m: &Manifest, key: &str) {
    let _ = writeln!(
        h,
        "<h2>How to verify this pack</h2>\
         <p>This page is a convenience; the evidence is the ledger entries under <code>events/</code>, each with its \
         inclusion proof under <code>proofs/</code>. To check everything offline, with no data directory and no \
         network, run the <code>attest</code> binary on the zip with the workspace's verifier key. Take the key from \
         where the workspace publishes it (<code>attest audit key</code>), not from this pack; it should read:</p>\
         <pre>attest verify PACK.zip --key '{}'</pre>\
         <p>It checks the checkpoint signatures, every inclusion proof, every file's SHA-256, {}and then decides every \
         recorded command again through the engine against the template version in the pack, confirming that each \
         rule held: required fields, stop order, assignees and separation of duties on each approval.</p>\
         <p>By hand: each <code>events/NNNNNN.json</code> is RFC 8785 canonical JSON; its leaf hash is \
         SHA-256(0x00 || bytes), and the C2SP tlog-proof next to it leads from that hash to the root signed in the \
         checkpoint. Each evidence file is named by the SHA-256 of its content, which the \
         <code>evidence_attached</code> event records.</p>",
        esc(key),
        if m.kind == PackKind::Period {
            "the consistency proof between the start and end checkpoints, that the period's entries are complete and contiguous, "
        } else {
            ""
        }
    );
}

fn row(h: &mut String, label: &str, html: &str) {
    let _ = write!(h, "<tr><th>{}</th><td>{html}</td></tr>", esc(label));
}

fn actor_text(actor: &Actor) -> String {
    let mut text = actor.to_string();
    if !actor.roles.is_empty() {
        let _ = write!(text, " ({})", actor.roles.join(", "));
    }
    if actor.admin {
        text.push_str(" [admin]");
    }
    text
}

fn run_event_text(body: &EventBody) -> String {
    match body {
        EventBody::RunStarted { name, template, version, .. } => {
            format!("started run \"{name}\" of {template} v{version}")
        }
        EventBody::FieldsSet { task, values } => {
            let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("set on {task}: {}", shown.join(", "))
        }
        EventBody::TaskCompleted { task, overridden } => {
            format!("completed {task}{}", if *overridden { " (admin override)" } else { "" })
        }
        EventBody::TaskApproved { task, comment, .. } => {
            format!("approved {task}{}", comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default())
        }
        EventBody::TaskRejected { task, comment, reopened, .. } => {
            format!("rejected {task}: {comment} (back for rework: {})", reopened.join(", "))
        }
        EventBody::TaskReopened { task, cause } => format!("{task} reopened: {cause}"),
        EventBody::CommentAdded { task, text } => format!("commented on {task}: {text}"),
        EventBody::EvidenceAttached { task, file, .. } => {
            format!("attached {} to {task} (sha256 {})", file.name, file.sha256)
        }
        EventBody::TaskReassigned { task, to, cause } => format!("{task} reassigned to {to}: {cause}"),
        EventBody::TaskReminded { task, step } => format!("sent reminder {step} of {task}"),
        EventBody::TaskEscalated { task, step, notify, reassign } => match (notify, reassign) {
            (Some(to), _) => format!("escalated {task} (step {step}): notified {to}"),
            (None, Some(to)) => format!("escalated {task} (step {step}): reassigned to {to}"),
            (None, None) => format!("escalated {task} (step {step})"),
        },
        EventBody::RunCompleted {} => "run completed".into(),
        EventBody::RunCancelled { reason } => format!("cancelled the run: {reason}"),
        EventBody::ServiceFailed { task, error } => format!("the call of service task {task} failed: {error}"),
        EventBody::ServiceRetried { task } => format!("retried service task {task}"),
    }
}

fn workspace_event_text(body: &WorkspaceEventBody) -> String {
    match body {
        WorkspaceEventBody::WorkspaceCreated { name, .. } => format!("created workspace \"{name}\""),
        WorkspaceEventBody::UserAdded { email, name, admin } => {
            format!("added {name} <{email}>{}", if *admin { " as admin" } else { "" })
        }
        WorkspaceEventBody::RoleGranted { email, role } => format!("granted role {role} to {email}"),
        WorkspaceEventBody::RoleRevoked { email, role } => format!("revoked role {role} from {email}"),
        WorkspaceEventBody::TemplatePublished { key, version, content_hash } => {
            format!("published template {key} v{version} ({content_hash})")
        }
        WorkspaceEventBody::TokenCreated { id, name, kind, access, roles } => {
            format!("issued {kind} {name} ({id}) with {access} access{}", roles_suffix(roles))
        }
        WorkspaceEventBody::TokenRevoked { id } => format!("revoked token {id}"),
        WorkspaceEventBody::PasswordChanged { email } => format!("set the password of {email}"),
        WorkspaceEventBody::WebhookCreated { id, url, .. } => format!("added webhook {id} to {url}"),
        WorkspaceEventBody::WebhookDeleted { id } => format!("deleted webhook {id}"),
        WorkspaceEventBody::WebhookDisabled { id, reason } => format!("disabled webhook {id}: {reason}"),
        WorkspaceEventBody::WebhookEnabled { id } => format!("enabled webhook {id} again"),
        WorkspaceEventBody::TriggerSet { template, run_as } => {
            format!("set the trigger URL of template {template}, starting runs as {run_as}")
        }
        WorkspaceEventBody::TriggerRemoved { template } => format!("removed the trigger URL of template {template}"),
        WorkspaceEventBody::ScheduleCreated { id, template, name_pattern, rule, time_zone, starts_as, .. } => {
            format!(
                "added schedule {id} of template {template} (\"{name_pattern}\", {rule} in {time_zone}, started as {starts_as})"
            )
        }
        WorkspaceEventBody::SchedulePaused { id } => format!("paused schedule {id}"),
        WorkspaceEventBody::ScheduleResumed { id } => format!("resumed schedule {id}"),
        WorkspaceEventBody::ScheduleDeleted { id } => format!("deleted schedule {id}"),
        WorkspaceEventBody::TimeZoneSet { time_zone } => format!("set the workspace time zone to {time_zone}"),
        WorkspaceEventBody::MailSettingsSet { smtp_host, smtp_port, from, .. } => {
            format!("set mail to go through {smtp_host}:{smtp_port} from {from}")
        }
    }
}

fn roles_suffix(roles: &[String]) -> String {
    if roles.is_empty() { String::new() } else { format!(" and roles {}", roles.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
