//! The template pages and the template editor over a real server, used as a
//! browser without JavaScript uses them: every input of the rendered form is
//! posted back (checked boxes, selected options, text as typed), redirects
//! are followed by hand, and the page's HTML is checked.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{Browser, set};

use serde_json::json;

async fn admin(s: &common::Server) -> Browser {
    let mut b = Browser::new(&s.base);
    b.sign_in("admin@example.com", &s.admin_password).await;
    b
}

async fn versions(s: &common::Server, key: &str) -> usize {
    let r = s.get("admin", &format!("/api/v1/templates/{key}/versions")).await;
    r.body["items"].as_array().or(r.body.as_array()).map_or(0, Vec::len)
}

/// Opens a new draft of vendor onboarding; returns the editor's path.
async fn draft_of_vendor(b: &mut Browser) -> String {
    let t = b.get("/templates/vendor-onboarding").await;
    let csrf = t.csrf();
    let r = b.post("/templates/vendor-onboarding/drafts", &[("csrf", csrf.as_str()), ("version", "1")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.starts_with("/drafts/"));
    r.location
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_and_the_template_page_show_owner_version_runs_policy_diagram_and_checklist() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let list = b.get("/templates").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(r#"<a href="/templates/vendor-onboarding" class="strong">Vendor onboarding</a>"#));
    assert!(list.body.contains("role:procurement-lead"), "the owner");
    assert!(list.body.contains("POL-007 Vendor risk management, clause 3.2"), "the policy");
    assert!(
        list.body.contains(r#"href="/runs?template=vendor-onboarding&amp;status=open""#),
        "open runs link to the runs"
    );

    let page = b.get("/templates/vendor-onboarding").await;
    assert_eq!(page.status, 200);
    let svg_start = page.body.find("<svg ").expect("the diagram is drawn into the page");
    assert!(page.body[svg_start..].contains(r#"data-from="finance_approval" data-to="security_review""#));
    for task in ["request", "security_review", "finance_approval"] {
        assert!(page.body.contains(&format!(r#"id="task-{task}""#)), "checklist entry {task}");
        assert!(page.body.contains(&format!(r##"<a href="#task-{task}">"##)), "diagram box {task} links to it");
    }
    assert!(page.body.contains("Only if</strong> personal_data is true"));
    assert!(page.body.contains(r#"id="control-VR-01""#));
    assert!(page.body.contains("Edit as a new draft"));

    // A member reads the same page but is offered no editing, and may not draft.
    let mut member = Browser::new(&s.base);
    let r = s.post("admin", "/api/v1/people", json!({"email": "mia@example.com", "roles": ["requester"]})).await;
    let otp = r.body["one_time_password"].as_str().unwrap().to_string();
    member.sign_in("mia@example.com", &otp).await;
    let form = member.get("/account/password").await;
    let csrf = form.csrf();
    let pw = "mia's long password";
    let r = member
        .post(
            "/account/password",
            &[("csrf", csrf.as_str()), ("current_password", &otp), ("new_password", pw), ("confirm_password", pw)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = member.get("/templates/vendor-onboarding").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Edit as a new draft"));
    let csrf = page.csrf();
    let r = member.post("/templates/vendor-onboarding/drafts", &[("csrf", csrf.as_str())]).await;
    assert_eq!(r.status, 403);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_in_the_editor_gets_a_message_beside_the_field_and_nothing_is_stored() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let editor = draft_of_vendor(&mut b).await;
    let page = b.get(&editor).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = page.form(&editor);
    assert!(form.iter().any(|(k, v)| k == "revision" && v == "1"));
    set(&mut form, "tasks[0].fields[0].max_length", "lots");
    let r = b.press(&editor, &form, "save").await;
    assert_eq!(r.status, 422, "{}", r.body);
    let input = r#"id="in-tasks-0-fields-0-max_length" name="tasks[0].fields[0].max_length" value="lots""#;
    assert!(r.body.contains(input), "the value stays as typed");
    let err_at = r.body.find(r#"id="in-tasks-0-fields-0-max_length-err""#).expect("a message beside the input");
    assert!(r.body[err_at..].starts_with(r#"id="in-tasks-0-fields-0-max_length-err"><p class="field-error">"#));
    assert!(r.body.contains("The form was not saved"));
    let again = b.get(&editor).await;
    assert!(again.form(&editor).contains(&("revision".into(), "1".into())), "nothing was stored");
    assert!(again.body.contains(r#"name="tasks[0].fields[0].max_length" value="120""#));

    // A stale revision is a conflict, not a silent overwrite.
    let mut stale = again.form(&editor);
    let ok = b.press(&editor, &stale, "save").await;
    assert_eq!(ok.status, 303);
    set(&mut stale, "name", "Lost update");
    let r = b.press(&editor, &stale, "save").await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("saved by someone else"));
    assert!(!b.get(&editor).await.body.contains("Lost update"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_shows_the_validators_messages_beside_the_item_and_publish_refuses_until_fixed() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let editor = draft_of_vendor(&mut b).await;
    let page = b.get(&editor).await;
    let mut form = page.form(&editor);
    set(&mut form, "tasks[1].assignee", "role:nobody");
    let r = b.press(&editor, &form, "validate").await;
    assert_eq!((r.status, r.location.as_str()), (303, format!("{editor}?check=1").as_str()), "{}", r.body);
    let checked = b.get(&r.location).await;
    assert!(checked.body.contains("<strong>1 problem</strong>"), "{}", checked.body);
    let err_at = checked.body.find(r#"id="in-tasks-1-assignee-err""#).expect("the message is beside the assignee");
    assert!(checked.body[err_at..].contains("names a role that is not declared"));

    let before = versions(&s, "vendor-onboarding").await;
    let form = checked.form(&editor);
    let r = b.press(&editor, &form, "publish").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("not published"));
    assert!(r.body.contains(r#"id="in-tasks-1-assignee-err""#));
    assert_eq!(versions(&s, "vendor-onboarding").await, before, "nothing was published");

    let page = b.get(&editor).await;
    let mut form = page.form(&editor);
    set(&mut form, "tasks[1].assignee", "role:procurement-lead");
    let r = b.press(&editor, &form, "publish").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/templates/vendor-onboarding?ok=published"), "{}", r.body);
    assert_eq!(versions(&s, "vendor-onboarding").await, before + 1);
    assert_eq!(b.get(&editor).await.status, 404, "a published draft is gone");
    let diff = b.get("/templates/vendor-onboarding/diff").await;
    assert_eq!(diff.status, 200);
    assert!(diff.body.contains("task security_review › assignee"), "{}", diff.body);
    assert!(diff.body.contains("role:procurement-lead"));
    assert!(diff.body.contains(r#"<tr class="ld-added">"#));
    let bad = b.get("/templates/vendor-onboarding/diff?from=9&to=2").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-from""#) && bad.body.contains("There is no version 9"), "{}", bad.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_fields_are_added_and_removed_by_plain_form_posts() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let editor = draft_of_vendor(&mut b).await;
    let page = b.get(&editor).await;
    let form = page.form(&editor);
    let r = b.press(&editor, &form, "add_task").await;
    assert_eq!((r.status, r.location.as_str()), (303, format!("{editor}?ok=saved&open=3#task-3").as_str()));
    let page = b.get(&editor).await;
    assert!(page.body.contains(r#"name="tasks[3].key" value="task_1""#));
    let form = page.form(&editor);
    let r = b.press(&editor, &form, "add_field:3").await;
    assert_eq!(r.status, 303);
    let page = b.get(&editor).await;
    let mut form = page.form(&editor);
    set(&mut form, "tasks[3].fields[0].type", "number");
    let r = b.press(&editor, &form, "save").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&editor).await;
    assert!(page.body.contains(r#"name="tasks[3].fields[0].decimals""#), "a number field offers a number's rules");
    let form = page.form(&editor);
    let r = b.press(&editor, &form, "remove_task:3").await;
    assert_eq!(r.status, 303);
    let page = b.get(&editor).await;
    assert!(!page.body.contains("tasks[3]"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yaml_view_refuses_text_that_does_not_read_with_its_line() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let editor = draft_of_vendor(&mut b).await;
    let yaml_path = format!("{editor}/yaml");
    let page = b.get(&yaml_path).await;
    let mut form = page.form(&yaml_path);
    let source = form.iter().find(|(k, _)| k == "source").unwrap().1.clone();
    assert!(source.contains("key: vendor-onboarding"));
    set(&mut form, "source", &source.replace("assignee: starter", "assignee: starter\n  stopp: true"));
    let r = b.press(&yaml_path, &form, "save").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"id="source-err"><p class="field-error">Line "#), "{}", r.body);
    assert!(b.get(&yaml_path).await.form(&yaml_path).contains(&("revision".into(), "1".into())), "nothing stored");

    set(
        &mut form,
        "source",
        &format!("# Reviewed by legal.\n{}", source.replace("name: Vendor onboarding\n", "name: Vendor intake\n")),
    );
    let r = b.press(&yaml_path, &form, "save").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&yaml_path).await;
    assert!(page.body.contains("# Reviewed by legal."), "the text is kept as written");
    assert!(
        b.get(&editor).await.body.contains(r#"name="name" value="Vendor intake""#),
        "the form shows the same draft"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_template_needs_a_good_key_and_nothing_is_stored_until_it_has_one() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let form = b.get("/drafts/new").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let r = b.post("/drafts", &[("csrf", csrf.as_str()), ("key", "Laptop Request"), ("name", "Laptop request")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains(r#"id="err-key""#), "{}", r.body);
    assert!(r.body.contains(r#"value="Laptop Request""#));
    let r = b.post("/drafts", &[("csrf", csrf.as_str()), ("key", "vendor-onboarding"), ("name", "Again")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("exists"));
    assert!(b.get("/templates").await.body.contains("No drafts."), "nothing stored");
    let r = b.post("/drafts", &[("csrf", csrf.as_str()), ("key", "laptop-request"), ("name", "Laptop request")]).await;
    assert_eq!(r.status, 303);
    let page = b.get(&r.location).await;
    let form = page.form(&r.location);
    let p = b.press(&r.location, &form, "publish").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/templates/laptop-request?ok=published"), "{}", p.body);
    let published = b.get("/templates/laptop-request?ok=published").await;
    assert!(published.body.contains("Published: new runs use this version."));
    s.stop().await;
}

/// The draft's YAML as the YAML view shows it, read as a template.
async fn draft_template(b: &mut Browser, editor: &str) -> attest_template::Template {
    let yaml_path = format!("{editor}/yaml");
    let form = b.get(&yaml_path).await.form(&yaml_path);
    let source = &form.iter().find(|(k, _)| k == "source").unwrap().1;
    attest_template::parse(source, attest_template::SourceFormat::Yaml, None).unwrap_or_else(|d| panic!("{d:?}"))
}

fn condition(v: serde_json::Value) -> Option<attest_template::Condition> {
    Some(serde_json::from_value(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_with_all_any_and_not_are_built_in_the_form_and_checked_by_the_validator() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let editor = draft_of_vendor(&mut b).await;
    // The example's `any` group shows as a group with a row per item and an empty row to add one.
    let page = b.get(&editor).await;
    let mut form = page.form(&editor);
    assert!(form.contains(&("tasks[2].show_when.match".into(), "any".into())), "{form:?}");
    assert!(form.contains(&("tasks[2].show_when.any[1].field".into(), "risk".into())));
    assert!(form.contains(&("tasks[2].show_when.any[2].field".into(), "".into())), "an empty row to fill in");
    // All of: (spend > 10000, made a group of its own), not (risk is high), personal data.
    set(&mut form, "tasks[2].show_when.match", "all");
    set(&mut form, "tasks[2].show_when.any[0].combine", "any");
    form.push(("tasks[2].show_when.any[1].negate".into(), "true".into()));
    set(&mut form, "tasks[2].show_when.any[2].field", "personal_data");
    set(&mut form, "tasks[2].show_when.any[2].op", "is");
    set(&mut form, "tasks[2].show_when.any[2].value", "true");
    let r = b.press(&editor, &form, "save").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let want = json!({"all": [
        {"any": [{"field": "annual_spend", "op": "gt", "value": 10000}]},
        {"not": {"field": "risk", "op": "is", "value": "high"}},
        {"field": "personal_data", "op": "is", "value": true},
    ]});
    assert_eq!(draft_template(&mut b, &editor).await.tasks[2].show_when, condition(want.clone()));

    // The nested group and the negation show as such; a bad item in the nested
    // group gets the validator's message beside its own input.
    let page = b.get(&editor).await;
    assert!(page.body.contains(r#"<legend>Condition item 1: a group</legend>"#), "{}", page.body);
    let mut form = page.form(&editor);
    assert!(form.contains(&("tasks[2].show_when.all[1].negate".into(), "true".into())), "{form:?}");
    assert!(form.contains(&("tasks[2].show_when.all[1].not.field".into(), "risk".into())));
    set(&mut form, "tasks[2].show_when.all[0].any[1].field", "no_such_field");
    set(&mut form, "tasks[2].show_when.all[0].any[1].op", "has_value");
    let r = b.press(&editor, &form, "validate").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let checked = b.get(&r.location).await;
    let at = checked
        .body
        .find(r#"id="in-tasks-2-show_when-all-0-any-1-field-err""#)
        .unwrap_or_else(|| panic!("the message is beside the item's field: {}", checked.body));
    assert!(checked.body[at..].contains("refers to field &#39;no_such_field&#39;, which does not exist"));
    let before = versions(&s, "vendor-onboarding").await;
    let refused = b.press(&editor, &checked.form(&editor), "publish").await;
    assert_eq!(refused.status, 422, "an invalid condition is not published: {}", refused.body);
    assert!(refused.body.contains(r#"id="in-tasks-2-show_when-all-0-any-1-field-err""#), "{}", refused.body);
    assert_eq!(versions(&s, "vendor-onboarding").await, before);

    // Clearing the item's field removes it; unticking `not` unwraps the condition.
    let mut form = refused.form(&editor);
    set(&mut form, "tasks[2].show_when.all[0].any[1].field", "");
    form.retain(|(k, _)| k != "tasks[2].show_when.all[1].negate");
    let r = b.press(&editor, &form, "publish").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/templates/vendor-onboarding?ok=published"), "{}", r.body);
    let published = s.get("admin", "/api/v1/templates/vendor-onboarding").await;
    assert_eq!(
        published.body["template"]["tasks"][2]["show_when"],
        json!({"all": [
            {"any": [{"field": "annual_spend", "op": "gt", "value": 10000}]},
            {"field": "risk", "op": "is", "value": "high"},
            {"field": "personal_data", "op": "is", "value": true},
        ]}),
        "{:?}",
        published.body
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_deeper_than_the_form_goes_is_shown_in_words_and_kept_as_written() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let editor = draft_of_vendor(&mut b).await;
    let yaml_path = format!("{editor}/yaml");
    let mut form = b.get(&yaml_path).await.form(&yaml_path);
    let source = form.iter().find(|(k, _)| k == "source").unwrap().1.clone();
    // Six levels: not › all › any › not › all › a comparison.
    let simple = "show_when:\n    field: personal_data\n    op: is\n    value: true\n";
    let deep = "show_when: { not: { all: [ { any: [ { not: { all: [ { field: personal_data, op: is, value: true } ] } } ] } ] } }\n";
    let edited = source.replacen(simple, deep, 1);
    assert_ne!(edited, source);
    set(&mut form, "source", &edited);
    let r = b.press(&yaml_path, &form, "save").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let want = draft_template(&mut b, &editor).await.tasks[1].show_when.clone();
    let page = b.get(&editor).await;
    assert!(page.body.contains("nests deeper than the form goes"), "{}", page.body);
    assert!(
        !page.body.contains(r#"name="tasks[1].show_when.negate""#),
        "no inputs for a condition the form cannot show"
    );
    let r = b.press(&editor, &page.form(&editor), "save").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(draft_template(&mut b, &editor).await.tasks[1].show_when, want, "kept as written");
    s.stop().await;
}
