//! One or more tests per rule the engine enforces (spec: "Rules the engine
//! enforces"). Every refusal is checked for its rule, its message, and that
//! the caller's state is untouched.

mod common;

use attest_engine::view::{TaskStatus, TaskView, projected_task_views, task_views};
use attest_engine::{
    Actor, Command, CompiledTemplate, Decision, Event, EventBody, FileRef, Refusal, Rule, RunState, RunStatus,
    TaskState, Values, execute,
};
use attest_template::{
    Assignee, Condition, DateBound, DateRules, Due, DueAnchor, Duration, EmailRules, Field, FieldKind, FileRules,
    MembersRules, NumberRules, Op, OptionRules, TableColumn, TableRules, Task, Template, TextRules,
};
use common::{approval, compile, field, task, template};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

// ----- Helpers -----------------------------------------------------------------

fn required(key: &str, kind: FieldKind) -> Field {
    Field { required: true, ..field(key, kind) }
}

fn when(field: &str, op: Op, value: Value) -> Condition {
    Condition::Compare { field: field.into(), op, value: Some(value) }
}

fn person(email: &str, roles: &[&str]) -> Actor {
    Actor::person(email, roles.iter().map(|r| r.to_string()).collect(), false)
}

fn admin(email: &str) -> Actor {
    Actor::person(email, Vec::new(), true)
}

fn values(pairs: &[(&str, Value)]) -> Values {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn set(task: &str, pairs: &[(&str, Value)]) -> Command {
    Command::SetFields { task: task.into(), values: values(pairs) }
}

fn complete(task: &str, pairs: &[(&str, Value)]) -> Command {
    Command::Complete { task: task.into(), values: values(pairs) }
}

fn approve(task: &str) -> Command {
    Command::Approve { task: task.into(), comment: None }
}

fn reject(task: &str, comment: &str) -> Command {
    Command::Reject { task: task.into(), comment: comment.into() }
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamps are valid")
}

/// A run under test: the template, the events so far and the state they fold to.
#[derive(Debug)]
struct Run {
    template: CompiledTemplate,
    events: Vec<Event>,
    state: RunState,
    now: Timestamp,
}

impl Run {
    /// Starts a run of `template` by `starter` on Monday 2026-03-02, 09:00 UTC.
    fn start(template: Template, starter: &Actor) -> Run {
        Run::start_at(template, starter, ts("2026-03-02T09:00:00Z"))
    }

    fn start_at(template: Template, starter: &Actor, now: Timestamp) -> Run {
        let template = compile(template);
        let start = Command::Start { run: "run-1".into(), name: "Test run".into(), due_at: None };
        let (events, state) = execute(&template, None, &start, starter, now).expect("a run starts");
        Run { template, events, state, now }
    }

    /// Executes a command that must be accepted; returns its events and checks
    /// the new state is the fold of all events so far.
    fn ok(&mut self, actor: &Actor, command: Command) -> Vec<Event> {
        let (events, state) = execute(&self.template, Some(&self.state), &command, actor, self.now)
            .unwrap_or_else(|r| panic!("{command:?} by {actor} was refused: {r}"));
        self.events.extend(events.iter().cloned());
        self.state = state;
        assert_eq!(
            RunState::replay(&self.template, &self.events).as_ref(),
            Ok(&self.state),
            "state is the fold of events"
        );
        events
    }

    /// Executes a command that must be refused and checks the state is untouched.
    fn refused(&self, actor: &Actor, command: Command) -> Refusal {
        let before = self.state.clone();
        let result = execute(&self.template, Some(&self.state), &command, actor, self.now);
        assert_eq!(self.state, before, "a refusal must leave the state unchanged");
        match result {
            Err(refusal) => refusal,
            Ok((events, _)) => panic!("{command:?} by {actor} was accepted with {events:?}"),
        }
    }

    /// Executes a command that must be refused by `rule` with `fragment` in its message.
    fn refuse(&self, actor: &Actor, command: Command, rule: Rule, fragment: &str) -> Refusal {
        let refusal = self.refused(actor, command);
        assert_eq!(refusal.rule, rule, "wrong rule in {refusal:?}");
        assert!(refusal.message.contains(fragment), "'{}' does not contain '{fragment}'", refusal.message);
        refusal
    }

    fn task(&self, key: &str) -> &TaskState {
        self.state.task(key).expect("the task exists")
    }
}

fn starter() -> Actor {
    person("sam@example.com", &[])
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.body.type_name()).collect()
}

fn pdf(name: &str, size: u64) -> FileRef {
    FileRef { name: name.into(), size, media_type: "application/pdf".into(), sha256: "ab".repeat(32).into() }
}

fn attach(task: &str, field: &str, file: FileRef) -> Command {
    Command::AttachEvidence { task: task.into(), field: Some(field.into()), file }
}

fn cancel(reason: &str) -> Command {
    Command::Cancel { reason: reason.into() }
}

fn status(run: &Run, key: &str) -> TaskStatus {
    let views = task_views(&run.template, &run.state, run.now, &TimeZone::UTC);
    views.into_iter().find(|v| v.key == key).expect("the task has a view").status
}

// ----- Rule 1: required fields and valid values -------------------------------

#[test]
fn completing_without_a_required_field_names_the_field_and_the_task() {
    let mut run = Run::start(
        template(vec![task(
            "request",
            "starter",
            vec![
                required("vendor_name", FieldKind::Text(TextRules::default())),
                required("contract", FieldKind::File(FileRules { accept: vec!["pdf".into()], max_size_mb: None })),
            ],
        )]),
        &starter(),
    );
    let refusal = run.refuse(
        &starter(),
        complete("request", &[("vendor_name", json!("Acme Ltd"))]),
        Rule::RequiredField,
        "field 'contract' on task 'request' is required",
    );
    assert_eq!(refusal.to_string(), "refused: field 'contract' on task 'request' is required");
    assert_eq!((refusal.task.as_deref(), refusal.field.as_deref()), (Some("request"), Some("contract")));

    run.ok(&starter(), attach("request", "contract", pdf("contract.pdf", 1000)));
    run.refuse(&starter(), complete("request", &[]), Rule::RequiredField, "field 'vendor_name' on task 'request'");
    let events = run.ok(&starter(), complete("request", &[("vendor_name", json!("Acme Ltd"))]));
    assert_eq!(types(&events), ["fields_set", "task_completed", "run_completed"]);
}

/// A one-task run whose task `t` holds the single field `f` of `kind`.
fn field_run(kind: FieldKind) -> Run {
    Run::start(template(vec![task("t", "starter", vec![field("f", kind)])]), &starter())
}

fn assert_invalid(kind: &FieldKind, value: Value, fragment: &str) {
    let run = field_run(kind.clone());
    let refusal = run.refuse(&starter(), set("t", &[("f", value)]), Rule::InvalidValue, fragment);
    assert!(refusal.message.starts_with("field 'f' on task 't': "), "{}", refusal.message);
    assert_eq!(refusal.field.as_deref(), Some("f"));
}

#[test]
fn of_several_invalid_values_the_first_in_field_order_is_refused() {
    // The keys sort the other way round, so the order the values come in does not decide.
    let number = FieldKind::Number(NumberRules { min: Some(0.0), ..NumberRules::default() });
    let fields = vec![field("zeta", number), field("alpha", FieldKind::Email(EmailRules::default()))];
    let run = Run::start(template(vec![task("t", "starter", fields)]), &starter());
    let bad = set("t", &[("alpha", json!("not an email")), ("zeta", json!(-5))]);
    let refusal = run.refuse(&starter(), bad, Rule::InvalidValue, "field 'zeta' on task 't'");
    assert_eq!(refusal.field.as_deref(), Some("zeta"));
}

/// Sets a valid value and returns it as stored.
fn stored(kind: &FieldKind, value: Value) -> Value {
    let mut run = field_run(kind.clone());
    run.ok(&starter(), set("t", &[("f", value)]));
    run.state.values.get("f").cloned().unwrap_or(Value::Null)
}

#[test]
fn text_values_respect_min_length_max_length_and_pattern() {
    let kind = FieldKind::Text(TextRules { min_length: Some(3), max_length: Some(5), pattern: Some("[A-Z]+".into()) });
    assert_invalid(&kind, json!("AB"), "must be at least 3 characters");
    assert_invalid(&kind, json!("ABCDEF"), "must be at most 5 characters");
    assert_invalid(&kind, json!("abc"), "must match the pattern [A-Z]+");
    assert_invalid(&kind, json!("ABCx"), "must match the pattern");
    assert_invalid(&kind, json!(["ABC"]), "must be a single value");
    assert_eq!(stored(&kind, json!("ABC")), json!("ABC"));
}

#[test]
fn number_values_respect_min_max_and_decimals() {
    let kind = FieldKind::Number(NumberRules { min: Some(0.0), max: Some(100.0), decimals: Some(2) });
    assert_invalid(&kind, json!(-1), "must be at least 0");
    assert_invalid(&kind, json!("100.5"), "must be at most 100");
    assert_invalid(&kind, json!(1.234), "must have at most 2 decimals");
    assert_invalid(&kind, json!("twelve"), "'twelve' is not a number");
    assert_eq!(stored(&kind, json!("99.99")), json!(99.99));
    assert_eq!(stored(&kind, json!(7.0)), json!(7));

    let whole = FieldKind::Number(NumberRules { decimals: Some(0), ..NumberRules::default() });
    assert_invalid(&whole, json!(2.5), "must be a whole number");
    assert_eq!(stored(&whole, json!("1_000")), json!(1000));
}

#[test]
fn number_decimals_are_counted_for_values_printed_in_exponent_form() {
    // 0.000001 prints as `1e-6` and 1.5e16 as `1.5e16`: the decimals are those
    // of the number, not of its printed mantissa.
    let two = FieldKind::Number(NumberRules { decimals: Some(2), ..NumberRules::default() });
    assert_invalid(&two, json!(0.000001), "must have at most 2 decimals");
    assert_invalid(&two, json!("1.5e-5"), "must have at most 2 decimals");
    let whole = FieldKind::Number(NumberRules { decimals: Some(0), ..NumberRules::default() });
    assert_eq!(stored(&whole, json!(1.5e16)), json!(1.5e16));
}

#[test]
fn email_values_respect_syntax_and_allowed_and_blocked_domains() {
    let allow = FieldKind::Email(EmailRules { allow_domains: vec!["example.com".into()], block_domains: vec![] });
    assert_invalid(&allow, json!("ann@other.org"), "must be an address at example.com");
    assert_invalid(&allow, json!("ann@badexample.com"), "must be an address at example.com");
    assert_invalid(&allow, json!("not-an-email"), "'not-an-email' is not an email address");
    assert_eq!(stored(&allow, json!(" Ann@Sub.Example.com ")), json!("ann@sub.example.com"));

    let block = FieldKind::Email(EmailRules { allow_domains: vec![], block_domains: vec!["gmail.com".into()] });
    assert_invalid(&block, json!("Someone@GMAIL.com"), "addresses at gmail.com are not allowed");
    assert_eq!(stored(&block, json!("ann@example.com")), json!("ann@example.com"));
}

#[test]
fn url_values_must_be_http_or_https_addresses() {
    assert_invalid(&FieldKind::Url, json!("ftp://example.com"), "is not an http or https address");
    assert_invalid(&FieldKind::Url, json!("https://"), "is not an http or https address");
    assert_invalid(&FieldKind::Url, json!("https://exa mple.com"), "is not an http or https address");
    assert_eq!(stored(&FieldKind::Url, json!("https://example.com/a")), json!("https://example.com/a"));
}

fn date_rules(not_before: Option<&str>, not_after: Option<&str>) -> DateRules {
    let bound = |s: &str| DateBound::parse(s).expect("test bounds are valid");
    DateRules { not_before: not_before.map(bound), not_after: not_after.map(bound) }
}

#[test]
fn date_values_respect_fixed_and_run_started_bounds_with_offsets() {
    // The run starts on 2026-03-02.
    let kind = FieldKind::Date(date_rules(Some("run_started"), Some("run_started+30d")));
    assert_invalid(&kind, json!("2026-03-01"), "must not be before 2026-03-02 (run_started)");
    assert_invalid(&kind, json!("2026-04-02"), "must not be after 2026-04-01 (run_started+30d)");
    assert_invalid(&kind, json!("01/04/2026"), "is not a date like 2025-01-31");
    assert_eq!(stored(&kind, json!("2026-04-01")), json!("2026-04-01"));
    assert_eq!(stored(&kind, json!("2026-03-02")), json!("2026-03-02"));

    let week_before = FieldKind::Date(date_rules(Some("run_started-1w"), None));
    assert_invalid(&week_before, json!("2026-02-22"), "must not be before 2026-02-23");
    assert_eq!(stored(&week_before, json!("2026-02-23")), json!("2026-02-23"));

    let fixed = FieldKind::Datetime(date_rules(Some("2026-01-01"), Some("2026-12-31")));
    assert_invalid(&fixed, json!("2025-12-31T23:59:59Z"), "must not be before 2026-01-01");
    assert_invalid(&fixed, json!("2027-01-01T00:00:00Z"), "must not be after 2026-12-31");
    assert_invalid(&fixed, json!("2026-05-01"), "is not a date and time");
    assert_eq!(stored(&fixed, json!("2026-05-01T10:00:00Z")), json!("2026-05-01T10:00:00Z"));
}

#[test]
fn date_values_respect_bounds_taken_from_other_fields() {
    let mut run = Run::start(
        template(vec![
            task("plan", "starter", vec![field("start", FieldKind::Date(DateRules::default()))]),
            task(
                "schedule",
                "starter",
                vec![field("end", FieldKind::Date(date_rules(Some("field:start"), Some("field:start+2w"))))],
            ),
        ]),
        &starter(),
    );
    // Without a value in `start` the bound does not apply yet; once it has
    // one, completing checks the value again.
    run.ok(&starter(), set("schedule", &[("end", json!("2020-01-01"))]));
    run.ok(&starter(), complete("plan", &[("start", json!("2026-05-10"))]));
    run.refuse(
        &starter(),
        complete("schedule", &[]),
        Rule::InvalidValue,
        "field 'end' on task 'schedule': must not be before 2026-05-10 (field:start)",
    );
    run.refuse(&starter(), set("schedule", &[("end", json!("2026-05-09"))]), Rule::InvalidValue, "(field:start)");
    run.refuse(
        &starter(),
        set("schedule", &[("end", json!("2026-05-25"))]),
        Rule::InvalidValue,
        "must not be after 2026-05-24 (field:start+14d)",
    );
    run.ok(&starter(), complete("schedule", &[("end", json!("2026-05-24"))]));
}

#[test]
fn a_completed_task_reopens_when_the_field_its_date_bound_names_changes() {
    let mut run = Run::start(
        template(vec![
            task("plan", "starter", vec![field("start", FieldKind::Date(DateRules::default()))]),
            task("schedule", "starter", vec![required("end", FieldKind::Date(date_rules(Some("field:start"), None)))]),
        ]),
        &starter(),
    );
    run.ok(&starter(), set("plan", &[("start", json!("2026-05-10"))]));
    run.ok(&starter(), complete("schedule", &[("end", json!("2026-05-12"))]));
    // The changed value is on another, still open task: only the bound ties them.
    let events = run.ok(&starter(), set("plan", &[("start", json!("2026-05-20"))]));
    assert_eq!(types(&events), ["fields_set", "task_reopened"]);
    let EventBody::TaskReopened { task, cause } = &events[1].body else { unreachable!() };
    assert_eq!(task, "schedule");
    assert!(cause.contains("must not be before 2026-05-20 (field:start)"), "{cause}");
}

#[test]
fn select_and_multi_choice_values_must_be_among_the_options() {
    let options = OptionRules { options: vec!["low".into(), "medium".into(), "high".into()] };
    let select = FieldKind::Select(options.clone());
    assert_invalid(&select, json!("extreme"), "'extreme' is not one of: low, medium, high");
    assert_invalid(&select, json!("Low"), "'Low' is not one of");
    assert_eq!(stored(&select, json!("high")), json!("high"));

    let multi = FieldKind::MultiChoice(options);
    assert_invalid(&multi, json!(["low", "extreme"]), "'extreme' is not one of");
    assert_invalid(&multi, json!({"low": true}), "must be a list");
    assert_eq!(stored(&multi, json!("low, high")), json!(["low", "high"]));
}

#[test]
fn checkbox_values_must_be_yes_or_no() {
    assert_invalid(&FieldKind::Checkbox, json!("maybe"), "'maybe' is not yes or no");
    assert_invalid(&FieldKind::Checkbox, json!(1), "'1' is not yes or no");
    assert_eq!(stored(&FieldKind::Checkbox, json!("Yes")), json!(true));
    assert_eq!(stored(&FieldKind::Checkbox, json!(false)), json!(false));
}

#[test]
fn members_fields_take_one_person_unless_multiple() {
    let single = FieldKind::Members(MembersRules { multiple: false });
    assert_invalid(&single, json!(["ann@example.com", "bob@example.com"]), "takes one person");
    assert_invalid(&single, json!("ann"), "'ann' is not an email address");
    assert_eq!(stored(&single, json!("Ann@Example.com")), json!(["ann@example.com"]));

    let multiple = FieldKind::Members(MembersRules { multiple: true });
    assert_invalid(&multiple, json!(["ann@example.com", "bob"]), "'bob' is not an email address");
    assert_eq!(
        stored(&multiple, json!("ann@example.com, bob@example.com")),
        json!(["ann@example.com", "bob@example.com"])
    );
}

#[test]
fn file_fields_respect_accepted_extensions_and_size() {
    let mut run = field_run(FieldKind::File(FileRules { accept: vec!["pdf".into()], max_size_mb: Some(1) }));
    run.refuse(
        &starter(),
        attach("t", "f", pdf("report.docx", 10)),
        Rule::InvalidValue,
        "'report.docx' must be one of: pdf",
    );
    run.refuse(
        &starter(),
        attach("t", "f", pdf("report.pdf", 1024 * 1024 + 1)),
        Rule::InvalidValue,
        "is larger than 1 MB",
    );
    let file = serde_json::to_value(pdf("report.pdf", 10)).expect("a file ref serialises");
    run.refuse(&starter(), set("t", &[("f", file)]), Rule::InvalidValue, "takes a file: attach it instead");

    run.ok(&starter(), attach("t", "f", pdf("Report.PDF", 1024 * 1024)));
    assert_eq!(run.task("t").evidence.len(), 1);
    assert_eq!(run.state.values["f"]["name"], json!("Report.PDF"));
}

#[test]
fn table_values_respect_their_columns() {
    let column = |key: &str, column_type: &str, required: bool| TableColumn {
        key: key.into(),
        label: key.into(),
        column_type: column_type.into(),
        required,
    };
    let kind = FieldKind::Table(TableRules {
        columns: vec![
            column("name", "text", true),
            column("amount", "number", false),
            column("due", "date", false),
            column("ok", "checkbox", false),
        ],
        max_rows: Some(2),
    });
    assert_invalid(&kind, json!([{"name": "a", "colour": "red"}]), "row 1 has an unknown column 'colour'");
    assert_invalid(&kind, json!([{"name": "a"}, {"amount": 3}]), "row 2: column 'name' is required");
    assert_invalid(&kind, json!([{"name": "a", "amount": "3"}]), "row 1: column 'amount' must be a number");
    assert_invalid(&kind, json!([{"name": "a", "due": "soon"}]), "row 1: column 'due' must be a date");
    assert_invalid(&kind, json!([{"name": "a", "ok": "yes"}]), "row 1: column 'ok' must be a checkbox");
    assert_invalid(&kind, json!(["a"]), "row 1 is not an object");
    assert_invalid(&kind, json!(5), "must be a list of rows");
    assert_invalid(&kind, json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]), "has more than 2 rows");
    let rows = json!([{"name": "a", "amount": 3, "due": "2026-03-02", "ok": true}, {"name": "b"}]);
    assert_eq!(stored(&kind, rows.clone()), rows);
}

// ----- Rule 1: stop tasks, hidden tasks and fields, conditions ----------------

fn security() -> Actor {
    person("sec@example.com", &["security"])
}

#[test]
fn a_stop_task_blocks_completing_and_approving_later_tasks_until_it_is_done() {
    let mut run = Run::start(
        template(vec![
            Task {
                stop: true,
                ..task("request", "starter", vec![required("name", FieldKind::Text(TextRules::default()))])
            },
            task("review", "role:security", vec![]),
            approval("sign", "role:security", &["review"]),
        ]),
        &starter(),
    );
    run.refuse(
        &security(),
        complete("review", &[]),
        Rule::StopTask,
        "task 'review' waits for stop task 'request' to be completed first",
    );
    assert_eq!(task_views(&run.template, &run.state, run.now, &TimeZone::UTC)[1].waits_for.as_deref(), Some("request"));
    run.ok(&starter(), complete("request", &[("name", json!("x"))]));
    run.ok(&security(), complete("review", &[]));
    run.ok(&admin("root@example.com"), approve("sign"));
}

#[test]
fn a_stop_task_blocks_approvals_behind_it() {
    let mut run = Run::start(
        template(vec![
            task("draft", "role:security", vec![]),
            Task { stop: true, ..task("gate", "starter", vec![]) },
            approval("sign", "role:finance", &["draft"]),
        ]),
        &starter(),
    );
    run.ok(&security(), complete("draft", &[]));
    run.refuse(&person("fin@example.com", &["finance"]), approve("sign"), Rule::StopTask, "waits for stop task 'gate'");
}

#[test]
fn a_hidden_stop_task_does_not_block() {
    let mut run = Run::start(
        template(vec![
            task("intake", "starter", vec![field("escalate", FieldKind::Checkbox)]),
            Task {
                stop: true,
                show_when: Some(when("escalate", Op::Is, json!(true))),
                ..task("gate", "starter", vec![])
            },
            task("finish", "starter", vec![]),
        ]),
        &starter(),
    );
    run.ok(&starter(), complete("finish", &[]));
    run.ok(&starter(), complete("intake", &[("escalate", json!(false))]));
    assert_eq!(run.state.status, RunStatus::Completed);
}

fn conditional_template() -> Template {
    template(vec![
        task(
            "request",
            "starter",
            vec![
                field("spend", FieldKind::Number(NumberRules::default())),
                field("personal_data", FieldKind::Checkbox),
                Field {
                    show_when: Some(when("personal_data", Op::Is, json!(true))),
                    ..field("risk", FieldKind::Select(OptionRules { options: vec!["low".into(), "high".into()] }))
                },
            ],
        ),
        Task { show_when: Some(when("spend", Op::Gt, json!(10000))), ..task("finance_review", "role:finance", vec![]) },
        Task {
            show_when: Some(when("risk", Op::Is, json!("high"))),
            ..task("security_review", "role:security", vec![])
        },
    ])
}

/// Regression (issue 2, durable throughput): the views a commit projects
/// name only open tasks' assignees, and are otherwise the views people see.
#[test]
fn projected_views_name_only_open_tasks_assignees() {
    let mut run = Run::start(conditional_template(), &starter());
    run.ok(&starter(), complete("request", &[("spend", json!(20000))]));
    let views = task_views(&run.template, &run.state, run.now, &TimeZone::UTC);
    let projected = projected_task_views(&run.template, &run.state, run.now, &TimeZone::UTC);
    let statuses: Vec<TaskStatus> = views.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [TaskStatus::Done, TaskStatus::Open, TaskStatus::Hidden]);
    let principals: Vec<&[String]> = views.iter().map(|v| v.assignees.as_slice()).collect();
    assert_eq!(
        principals,
        [&["user:sam@example.com".to_string()][..], &["role:finance".to_string()], &["role:security".to_string()]]
    );
    for (view, projected) in views.iter().zip(&projected) {
        let open = matches!(view.status, TaskStatus::Open | TaskStatus::Rework);
        let expected = if open { view.assignees.clone() } else { Vec::new() };
        assert_eq!(projected.assignees, expected, "{}", view.key);
        assert_eq!(TaskView { assignees: expected, ..view.clone() }, *projected, "{}", view.key);
    }
}

#[test]
fn a_hidden_task_cannot_be_completed_or_worked_on() {
    let run = Run::start(conditional_template(), &starter());
    run.refuse(
        &security(),
        complete("security_review", &[]),
        Rule::HiddenTask,
        "task 'security_review' is hidden by its condition",
    );
    run.refuse(&admin("root@example.com"), complete("finance_review", &[]), Rule::HiddenTask, "is hidden");
    run.refuse(&security(), set("security_review", &[]), Rule::HiddenTask, "is hidden");
}

#[test]
fn a_hidden_field_cannot_be_set_but_can_be_set_with_the_value_that_shows_it() {
    let mut run = Run::start(conditional_template(), &starter());
    let refusal = run.refuse(
        &starter(),
        set("request", &[("risk", json!("high"))]),
        Rule::HiddenField,
        "field 'risk' on task 'request' is hidden by its condition",
    );
    assert_eq!(refusal.field.as_deref(), Some("risk"));
    run.ok(&starter(), set("request", &[("personal_data", json!(true)), ("risk", json!("high"))]));
    assert_eq!(run.state.values["risk"], json!("high"));
}

#[test]
fn a_task_appears_and_disappears_as_the_value_it_depends_on_changes() {
    let mut run = Run::start(conditional_template(), &starter());
    assert_eq!(status(&run, "finance_review"), TaskStatus::Hidden);
    run.ok(&starter(), set("request", &[("spend", json!(20000))]));
    assert_eq!(status(&run, "finance_review"), TaskStatus::Open);
    run.ok(&starter(), set("request", &[("spend", json!(500))]));
    assert_eq!(status(&run, "finance_review"), TaskStatus::Hidden);
    run.refuse(&person("f@example.com", &["finance"]), complete("finance_review", &[]), Rule::HiddenTask, "hidden");
    run.ok(&starter(), set("request", &[("spend", json!("10001"))]));
    run.ok(&person("f@example.com", &["finance"]), complete("finance_review", &[]));
}

#[test]
fn a_hidden_fields_stale_value_does_not_drive_later_conditions() {
    let mut run = Run::start(conditional_template(), &starter());
    run.ok(&starter(), set("request", &[("personal_data", json!(true)), ("risk", json!("high"))]));
    assert_eq!(status(&run, "security_review"), TaskStatus::Open);

    run.ok(&starter(), set("request", &[("personal_data", json!(false))]));
    assert_eq!(run.state.values["risk"], json!("high"), "hiding a field keeps its value");
    assert_eq!(status(&run, "security_review"), TaskStatus::Hidden);
    run.refuse(&security(), complete("security_review", &[]), Rule::HiddenTask, "hidden");

    // Completing the run does not wait for the task the stale value would show.
    run.ok(&starter(), complete("request", &[]));
    assert_eq!(run.state.status, RunStatus::Completed);
}

#[test]
fn a_completed_task_reopens_when_a_changed_value_shows_a_required_field_it_lacks() {
    let mut run = Run::start(
        template(vec![
            task("intake", "starter", vec![field("sensitive", FieldKind::Checkbox)]),
            task(
                "review",
                "role:security",
                vec![Field {
                    show_when: Some(when("sensitive", Op::Is, json!(true))),
                    ..required("notes", FieldKind::Textarea(TextRules::default()))
                }],
            ),
        ]),
        &starter(),
    );
    run.ok(&security(), complete("review", &[]));
    let events = run.ok(&starter(), set("intake", &[("sensitive", json!("yes"))]));
    assert_eq!(types(&events), ["fields_set", "task_reopened"]);
    let EventBody::TaskReopened { task, cause } = &events[1].body else { unreachable!() };
    assert_eq!(task, "review");
    assert!(cause.contains("field 'notes' on task 'review' is required"), "{cause}");
    assert!(!run.task("review").done);
    run.ok(&security(), complete("review", &[("notes", json!("checked"))]));
}

#[test]
fn a_completed_task_shown_again_is_checked_against_values_changed_while_it_was_hidden() {
    let mut run = Run::start(
        template(vec![
            task(
                "intake",
                "starter",
                vec![
                    field("sensitive", FieldKind::Checkbox),
                    field("level", FieldKind::Select(OptionRules { options: vec!["low".into(), "high".into()] })),
                ],
            ),
            Task {
                show_when: Some(when("sensitive", Op::Is, json!(true))),
                ..task(
                    "review",
                    "role:security",
                    vec![Field {
                        show_when: Some(when("level", Op::Is, json!("high"))),
                        ..required("notes", FieldKind::Textarea(TextRules::default()))
                    }],
                )
            },
        ]),
        &starter(),
    );
    run.ok(&starter(), set("intake", &[("sensitive", json!(true)), ("level", json!("low"))]));
    run.ok(&security(), complete("review", &[]));
    // Hidden, the task's field stays hidden whatever the level says, so
    // raising the level leaves the completed task alone.
    run.ok(&starter(), set("intake", &[("sensitive", json!(false))]));
    let events = run.ok(&starter(), set("intake", &[("level", json!("high"))]));
    assert_eq!(types(&events), ["fields_set"]);
    assert!(run.task("review").done);
    // Shown again, it now shows the required field it lacks.
    let events = run.ok(&starter(), set("intake", &[("sensitive", json!(true))]));
    assert_eq!(types(&events), ["fields_set", "task_reopened"]);
    let EventBody::TaskReopened { task, cause } = &events[1].body else { unreachable!() };
    assert_eq!(task, "review");
    assert!(cause.contains("field 'notes' on task 'review' is required"), "{cause}");
}

// ----- Rule 1: who may act -----------------------------------------------------

fn assignee_template() -> Template {
    template(vec![
        task("by_starter", "starter", vec![]),
        task("by_role", "role:security", vec![]),
        task("by_user", "user:Dana@Example.com", vec![]),
        task("pick", "starter", vec![field("reviewer", FieldKind::Members(MembersRules { multiple: true }))]),
        task("by_field", "field:reviewer", vec![]),
    ])
}

fn outsider() -> Actor {
    person("out@example.com", &["finance"])
}

#[test]
fn only_the_starter_may_act_on_a_starter_task() {
    let mut run = Run::start(assignee_template(), &starter());
    run.refuse(
        &outsider(),
        complete("by_starter", &[]),
        Rule::NotAssignee,
        "out@example.com is not an assignee of task 'by_starter' (assigned to starter)",
    );
    run.ok(&starter(), complete("by_starter", &[]));
}

#[test]
fn only_holders_of_the_role_may_act_on_a_role_task() {
    let mut run = Run::start(assignee_template(), &starter());
    run.refuse(&outsider(), complete("by_role", &[]), Rule::NotAssignee, "(assigned to role:security)");
    run.refuse(&starter(), set("by_role", &[]), Rule::NotAssignee, "not an assignee of task 'by_role'");
    run.ok(&security(), complete("by_role", &[]));
}

#[test]
fn only_the_named_user_may_act_on_a_user_task() {
    let mut run = Run::start(assignee_template(), &starter());
    run.refuse(&outsider(), complete("by_user", &[]), Rule::NotAssignee, "(assigned to user:dana@example.com)");
    run.ok(&person("DANA@example.com", &[]), complete("by_user", &[]));
}

#[test]
fn only_the_people_chosen_in_a_members_field_may_act_on_a_field_task() {
    let mut run = Run::start(assignee_template(), &starter());
    let ann = person("ann@example.com", &[]);
    run.refuse(&ann, complete("by_field", &[]), Rule::NotAssignee, "(assigned to field:reviewer)");
    run.ok(&starter(), set("pick", &[("reviewer", json!(["bob@example.com", "Ann@example.com"]))]));
    run.refuse(&starter(), complete("by_field", &[]), Rule::NotAssignee, "(assigned to field:reviewer)");
    run.ok(&ann, complete("by_field", &[]));
}

#[test]
fn a_reassigned_task_is_acted_on_by_its_new_assignee_only() {
    let mut run = Run::start(assignee_template(), &starter());
    let reassign =
        Command::Reassign { task: "by_role".into(), to: "user:erin@example.com".into(), cause: "overdue".into() };
    run.refuse(&security(), reassign.clone(), Rule::NotPermitted, "only an admin or an escalation may reassign");
    run.ok(&Actor::system(), reassign);
    run.refuse(&security(), complete("by_role", &[]), Rule::NotAssignee, "(assigned to user:erin@example.com)");
    run.ok(&person("erin@example.com", &[]), complete("by_role", &[]));
}

#[test]
fn an_admin_may_act_on_any_task_and_the_override_is_recorded() {
    let mut run = Run::start(assignee_template(), &starter());
    let events = run.ok(&admin("root@example.com"), complete("by_role", &[]));
    assert_eq!(events[0].body, EventBody::TaskCompleted { task: "by_role".into(), overridden: true });
    assert!(run.task("by_role").overridden);

    let admin_with_role = Actor::person("boss@example.com", vec!["security".into()], true);
    let mut run = Run::start(assignee_template(), &starter());
    let events = run.ok(&admin_with_role, complete("by_role", &[]));
    assert_eq!(events[0].body, EventBody::TaskCompleted { task: "by_role".into(), overridden: false });
}

// ----- Rule 2: approvals ---------------------------------------------------------

fn finance() -> Actor {
    person("fin@example.com", &["finance"])
}

fn approval_template() -> Template {
    template(vec![
        task("request", "starter", vec![required("amount", FieldKind::Number(NumberRules::default()))]),
        task("review", "role:security", vec![]),
        approval("sign", "role:finance", &["request", "review"]),
    ])
}

/// A run of `approval_template` with both subjects done.
fn run_ready_for_approval() -> Run {
    let mut run = Run::start(approval_template(), &starter());
    run.ok(&starter(), complete("request", &[("amount", json!(5000))]));
    run.ok(&security(), complete("review", &[]));
    run
}

#[test]
fn an_approval_waits_for_its_subjects() {
    let mut run = Run::start(approval_template(), &starter());
    run.refuse(
        &finance(),
        approve("sign"),
        Rule::ApprovalWaits,
        "approval 'sign' waits for task 'request' to be completed",
    );
    run.ok(&starter(), complete("request", &[("amount", json!(5000))]));
    run.refuse(&finance(), reject("sign", "no"), Rule::ApprovalWaits, "waits for task 'review'");
    run.ok(&security(), complete("review", &[]));
    let events = run.ok(&finance(), approve("sign"));
    assert_eq!(types(&events), ["task_approved", "run_completed"]);
}

#[test]
fn approvals_are_decided_and_tasks_are_completed_not_the_other_way_round() {
    let run = run_ready_for_approval();
    run.refuse(
        &finance(),
        complete("sign", &[]),
        Rule::ApprovalTask,
        "task 'sign' is an approval: approve or reject it",
    );
    run.refuse(&starter(), approve("request"), Rule::NotApprovalTask, "task 'request' is not an approval");
    run.refuse(&starter(), reject("request", "no"), Rule::NotApprovalTask, "is not an approval");
}

#[test]
fn whoever_completed_a_subject_cannot_approve_or_reject_it() {
    let both = person("sam@example.com", &["finance"]);
    let run = run_ready_for_approval();
    run.refuse(
        &both,
        approve("sign"),
        Rule::SeparationOfDuties,
        "separation of duties: sam@example.com completed task 'request' and cannot decide approval 'sign'",
    );
    run.refuse(&both, reject("sign", "redo"), Rule::SeparationOfDuties, "completed task 'request'");
}

#[test]
fn separation_of_duties_holds_for_admins_too() {
    let root = admin("root@example.com");
    let mut run = Run::start(approval_template(), &starter());
    run.ok(&starter(), complete("request", &[("amount", json!(1))]));
    run.ok(&root, complete("review", &[]));
    run.refuse(&root, approve("sign"), Rule::SeparationOfDuties, "root@example.com completed task 'review'");
    let events = run.ok(&admin("other-admin@example.com"), approve("sign"));
    assert_eq!(events[0].body, EventBody::TaskApproved { task: "sign".into(), comment: None, overridden: true });
}

#[test]
fn rejecting_needs_a_comment() {
    let run = run_ready_for_approval();
    run.refuse(&finance(), reject("sign", ""), Rule::CommentRequired, "rejecting approval 'sign' needs a comment");
    run.refuse(&finance(), reject("sign", "  \n "), Rule::CommentRequired, "needs a comment");
}

#[test]
fn rejecting_reopens_the_subjects_keeping_their_values_and_counts_the_rework() {
    let mut run = run_ready_for_approval();
    let events = run.ok(&finance(), reject("sign", " Amount is wrong "));
    assert_eq!(
        events[0].body,
        EventBody::TaskRejected {
            task: "sign".into(),
            comment: "Amount is wrong".into(),
            reopened: vec!["request".into(), "review".into()],
            overridden: false,
        }
    );
    for key in ["request", "review"] {
        assert!(!run.task(key).done);
        assert_eq!(run.task(key).rework_count, 1);
        assert_eq!(status(&run, key), TaskStatus::Rework);
    }
    assert_eq!(run.state.values["amount"], json!(5000));
    assert_eq!(run.state.rework_count, 1);
    assert_eq!(run.task("sign").decision, Some(Decision::Rejected));
    assert_eq!(run.task("sign").decision_comment.as_deref(), Some("Amount is wrong"));
    assert!(!run.task("sign").done);
    run.refuse(&finance(), approve("sign"), Rule::ApprovalWaits, "waits for task 'request'");
}

#[test]
fn rejecting_resets_another_approval_of_the_reopened_subject() {
    let mut run = Run::start(
        template(vec![
            task("request", "starter", vec![]),
            approval("audit", "role:audit", &["request"]),
            approval("sign", "role:finance", &["request"]),
        ]),
        &starter(),
    );
    run.ok(&starter(), complete("request", &[]));
    run.ok(&person("aud@example.com", &["audit"]), approve("audit"));
    let events = run.ok(&finance(), reject("sign", "redo"));
    assert_eq!(types(&events), ["task_rejected", "task_reopened"]);
    assert_eq!(events[1].body.task(), Some("audit"));
    assert!(!run.task("audit").done);
}

#[test]
fn rework_then_approval_completes_the_run() {
    let mut run = run_ready_for_approval();
    run.ok(&finance(), reject("sign", "redo"));
    run.ok(&starter(), complete("request", &[]));
    run.ok(&security(), complete("review", &[]));
    let events = run.ok(&finance(), Command::Approve { task: "sign".into(), comment: Some(" fine now ".into()) });
    assert_eq!(types(&events), ["task_approved", "run_completed"]);
    assert_eq!(run.state.status, RunStatus::Completed);
    assert_eq!(run.task("sign").decision_comment.as_deref(), Some("fine now"));
    assert_eq!(run.task("request").rework_count, 1);
}

#[test]
fn an_approval_is_reset_when_a_changed_value_reopens_its_subject() {
    // Without the reset, the approver could redo the subject themselves and
    // the run would complete with them signing off their own work.
    let both = person("fin@example.com", &["finance", "security"]);
    let mut run = Run::start(
        template(vec![
            task("intake", "starter", vec![field("sensitive", FieldKind::Checkbox)]),
            task(
                "review",
                "role:security",
                vec![Field {
                    show_when: Some(when("sensitive", Op::Is, json!(true))),
                    ..required("notes", FieldKind::Text(TextRules::default()))
                }],
            ),
            approval("sign", "role:finance", &["review"]),
        ]),
        &starter(),
    );
    run.ok(&security(), complete("review", &[]));
    run.ok(&both, approve("sign"));
    let events = run.ok(&starter(), set("intake", &[("sensitive", json!(true))]));
    assert_eq!(types(&events), ["fields_set", "task_reopened", "task_reopened"]);
    assert_eq!(events[2].body.task(), Some("sign"));
    assert!(!run.task("sign").done);
    run.ok(&both, complete("review", &[("notes", json!("seen"))]));
    run.refuse(&both, approve("sign"), Rule::SeparationOfDuties, "completed task 'review'");
}

#[test]
fn an_approval_is_reset_when_a_changed_value_shows_a_subject_it_did_not_sign_off() {
    let mut run = Run::start(
        template(vec![
            task("intake", "starter", vec![field("sensitive", FieldKind::Checkbox)]),
            task("request", "starter", vec![]),
            Task { show_when: Some(when("sensitive", Op::Is, json!(true))), ..task("review", "role:security", vec![]) },
            approval("sign", "role:finance", &["request", "review"]),
        ]),
        &starter(),
    );
    run.ok(&starter(), complete("request", &[]));
    run.ok(&finance(), approve("sign"));
    let events = run.ok(&starter(), set("intake", &[("sensitive", json!(true))]));
    assert_eq!(types(&events), ["fields_set", "task_reopened"]);
    assert_eq!(events[1].body.task(), Some("sign"));
    run.refuse(&finance(), approve("sign"), Rule::ApprovalWaits, "waits for task 'review'");
}

#[test]
fn approving_needs_the_approvals_own_required_fields() {
    let mut run = Run::start(
        template(vec![
            task("request", "starter", vec![]),
            Task {
                fields: vec![required("conditions", FieldKind::Text(TextRules::default()))],
                ..approval("sign", "role:finance", &["request"])
            },
        ]),
        &starter(),
    );
    run.ok(&starter(), complete("request", &[]));
    run.refuse(&finance(), approve("sign"), Rule::RequiredField, "field 'conditions' on task 'sign' is required");
    run.ok(&finance(), reject("sign", "no conditions can make this work"));
    run.ok(&starter(), complete("request", &[]));
    run.ok(&finance(), set("sign", &[("conditions", json!("net 30"))]));
    run.ok(&finance(), approve("sign"));
    assert_eq!(run.state.status, RunStatus::Completed);
}

// ----- Rule 3: completing and cancelling runs ---------------------------------

#[test]
fn the_run_completes_when_every_visible_task_is_done_and_hidden_tasks_do_not_block() {
    let mut run = Run::start(conditional_template(), &starter());
    let events = run.ok(&starter(), complete("request", &[("spend", json!(20000))]));
    assert_eq!(types(&events), ["fields_set", "task_completed"]);
    assert_eq!(run.state.status, RunStatus::Open);
    let events = run.ok(&person("f@example.com", &["finance"]), complete("finance_review", &[]));
    assert_eq!(types(&events), ["task_completed", "run_completed"]);
    assert_eq!(events[1].by, Actor::system());
    assert_eq!(run.state.status, RunStatus::Completed);
    assert_eq!(run.state.finished_at, Some(run.now));
    assert!(!run.task("security_review").done);
}

#[test]
fn cancelling_needs_a_reason() {
    let run = Run::start(approval_template(), &starter());
    let root = admin("root@example.com");
    run.refuse(&root, cancel(""), Rule::ReasonRequired, "cancelling a run needs a reason");
    run.refuse(&root, cancel(" \t"), Rule::ReasonRequired, "needs a reason");
}

#[test]
fn only_an_admin_or_the_process_owner_may_cancel() {
    let run = Run::start(approval_template(), &starter());
    for actor in [starter(), finance(), person("x@example.com", &["process-owner-ish"])] {
        run.refuse(&actor, cancel("duplicate"), Rule::NotPermitted, "only the process owner or an admin may");
    }
    let allowed = [
        admin("root@example.com"),
        person("lead@example.com", &["process-lead"]),
        person("po@example.com", &["process-owner"]),
    ];
    for actor in allowed {
        let mut run = Run::start(approval_template(), &starter());
        let events = run.ok(&actor, cancel(" duplicate request "));
        assert_eq!(events[0].body, EventBody::RunCancelled { reason: "duplicate request".into() });
        assert_eq!(run.state.status, RunStatus::Cancelled);
        assert_eq!(run.state.cancel_reason.as_deref(), Some("duplicate request"));
    }
}

#[test]
fn a_template_owned_by_a_user_may_be_cancelled_by_that_user() {
    let owned = Template { owner: Some(Assignee::User("olga@example.com".into())), ..approval_template() };
    let mut run = Run::start(owned, &starter());
    run.refuse(&person("lead@example.com", &["process-lead"]), cancel("x"), Rule::NotPermitted, "may not cancel");
    run.ok(&person("Olga@Example.com", &[]), cancel("wrong vendor"));
}

#[test]
fn commands_on_a_cancelled_run_are_refused() {
    let mut run = Run::start(approval_template(), &starter());
    run.ok(&admin("root@example.com"), cancel("duplicate"));
    run.refuse(&starter(), complete("request", &[("amount", json!(1))]), Rule::RunNotOpen, "the run is cancelled");
    run.refuse(&starter(), set("request", &[("amount", json!(1))]), Rule::RunNotOpen, "the run is cancelled");
    run.refuse(&admin("root@example.com"), cancel("again"), Rule::RunNotOpen, "the run is cancelled");
}

#[test]
fn commands_on_a_completed_run_are_refused() {
    let mut run = run_ready_for_approval();
    run.ok(&finance(), approve("sign"));
    run.refuse(&finance(), reject("sign", "too late"), Rule::RunNotOpen, "the run is completed");
    run.refuse(
        &starter(),
        Command::Comment { task: "request".into(), text: "hi".into() },
        Rule::RunNotOpen,
        "completed",
    );
    run.refuse(&admin("root@example.com"), cancel("late"), Rule::RunNotOpen, "the run is completed");
    let start = Command::Start { run: "run-1".into(), name: "again".into(), due_at: None };
    run.refuse(&starter(), start, Rule::RunNotOpen, "run 'run-1' has already started");
}

// ----- Rule 4: refusals name the task and field -------------------------------

#[test]
fn a_completed_task_cannot_be_completed_or_changed_again() {
    let run = run_ready_for_approval();
    run.refuse(&starter(), complete("request", &[]), Rule::TaskLocked, "task 'request' is already completed");
    run.refuse(&starter(), set("request", &[("amount", json!(2))]), Rule::TaskLocked, "is already completed");
    run.refuse(&starter(), attach("request", "amount", pdf("a.pdf", 1)), Rule::TaskLocked, "is already completed");
    let mut with_audit = Run::start(
        template(vec![
            task("request", "starter", vec![]),
            approval("audit", "role:audit", &["request"]),
            task("close", "starter", vec![]),
        ]),
        &starter(),
    );
    with_audit.ok(&starter(), complete("request", &[]));
    with_audit.ok(&person("aud@example.com", &["audit"]), approve("audit"));
    with_audit.refuse(
        &person("aud@example.com", &["audit"]),
        approve("audit"),
        Rule::AlreadyCompleted,
        "task 'audit' is already completed",
    );
}

#[test]
fn unknown_tasks_and_fields_and_fields_of_other_tasks_are_refused() {
    let run = Run::start(approval_template(), &starter());
    let refusal =
        run.refuse(&starter(), complete("nope", &[]), Rule::UnknownTask, "task 'nope' does not exist in this template");
    assert_eq!(refusal.task.as_deref(), Some("nope"));
    let refusal = run.refuse(
        &starter(),
        set("request", &[("colour", json!(1))]),
        Rule::UnknownField,
        "task 'request' has no field 'colour'",
    );
    assert_eq!(refusal.field.as_deref(), Some("colour"));
    let mut run = Run::start(conditional_template(), &starter());
    run.ok(&starter(), set("request", &[("spend", json!(20000))]));
    run.refuse(
        &person("f@example.com", &["finance"]),
        complete("finance_review", &[("spend", json!(1))]),
        Rule::FieldNotOnTask,
        "task 'finance_review' has no field 'spend'",
    );
}

#[test]
fn empty_comments_are_refused() {
    let run = Run::start(approval_template(), &starter());
    let comment = Command::Comment { task: "request".into(), text: "  ".into() };
    run.refuse(&starter(), comment, Rule::CommentRequired, "a comment must not be empty");
}

// ----- Due dates and overdue -----------------------------------------------------

fn due(after: DueAnchor, within: &str, business_days: bool) -> Option<Due> {
    Some(Due { after, within: Duration::parse(within).expect("valid duration"), business_days })
}

fn due_template() -> Template {
    template(vec![
        Task {
            due: due(DueAnchor::RunStarted, "2d", false),
            ..task("intake", "starter", vec![field("deadline", FieldKind::Date(DateRules::default()))])
        },
        Task { due: due(DueAnchor::Task("intake".into()), "3d", true), ..task("review", "role:security", vec![]) },
        Task { due: due(DueAnchor::Field("deadline".into()), "1d", false), ..task("fix", "role:security", vec![]) },
    ])
}

fn due_and_overdue(run: &Run, now: &str) -> Vec<(Option<jiff::Timestamp>, bool)> {
    task_views(&run.template, &run.state, ts(now), &TimeZone::UTC).iter().map(|v| (v.due_at, v.overdue)).collect()
}

#[test]
fn due_dates_count_from_the_run_start_a_task_completion_or_a_field() {
    // Friday 2026-03-06.
    let mut run = Run::start_at(due_template(), &starter(), ts("2026-03-06T10:00:00Z"));
    assert_eq!(
        due_and_overdue(&run, "2026-03-06T10:00:00Z"),
        [(Some(ts("2026-03-08T10:00:00Z")), false), (None, false), (None, false)]
    );
    assert_eq!(due_and_overdue(&run, "2026-03-08T10:00:01Z")[0], (Some(ts("2026-03-08T10:00:00Z")), true));

    run.now = ts("2026-03-06T15:00:00Z");
    run.ok(&starter(), complete("intake", &[("deadline", json!("2026-03-20"))]));
    // Three business days from a Friday afternoon: Monday, Tuesday, Wednesday.
    assert_eq!(
        due_and_overdue(&run, "2026-03-11T15:00:00Z"),
        [
            (Some(ts("2026-03-08T10:00:00Z")), false),
            (Some(ts("2026-03-11T15:00:00Z")), false),
            (Some(ts("2026-03-21T00:00:00Z")), false),
        ]
    );
    assert_eq!(due_and_overdue(&run, "2026-03-11T15:00:01Z")[1], (Some(ts("2026-03-11T15:00:00Z")), true));
    assert_eq!(due_and_overdue(&run, "2026-03-21T00:00:01Z")[2], (Some(ts("2026-03-21T00:00:00Z")), true));
}

#[test]
fn due_dates_use_the_given_time_zone_for_field_anchors() {
    let mut run = Run::start_at(due_template(), &starter(), ts("2026-03-06T10:00:00Z"));
    run.ok(&starter(), complete("intake", &[("deadline", json!("2026-03-20"))]));
    let berlin = TimeZone::get("Europe/Berlin").expect("the tz database knows Berlin");
    let views = task_views(&run.template, &run.state, run.now, &berlin);
    assert_eq!(views[2].due_at, Some(ts("2026-03-20T23:00:00Z")));
}

#[test]
fn done_tasks_and_finished_runs_are_never_overdue() {
    let mut run = Run::start_at(due_template(), &starter(), ts("2026-03-06T10:00:00Z"));
    run.now = ts("2026-04-01T00:00:00Z");
    run.ok(&starter(), complete("intake", &[("deadline", json!("2026-03-20"))]));
    let overdue: Vec<bool> = due_and_overdue(&run, "2026-05-01T00:00:00Z").iter().map(|d| d.1).collect();
    assert_eq!(overdue, [false, true, true]);
    run.ok(&admin("root@example.com"), cancel("stale"));
    let overdue: Vec<bool> = due_and_overdue(&run, "2026-05-01T00:00:00Z").iter().map(|d| d.1).collect();
    assert_eq!(overdue, [false, false, false]);
}

// ----- Reminders and escalations -----------------------------------------------

fn timed_template() -> Template {
    use attest_template::{Escalation, EscalationAction, Reminder};
    template(vec![
        Task {
            due: due(DueAnchor::RunStarted, "3d", true),
            remind: vec![Reminder { before_due: Duration::parse("1d").expect("valid") }],
            escalate: vec![
                Escalation {
                    overdue_by: Duration::parse("1d").expect("valid"),
                    action: EscalationAction::Notify(Assignee::Role("lead".into())),
                },
                Escalation {
                    overdue_by: Duration::parse("3d").expect("valid"),
                    action: EscalationAction::Reassign(Assignee::User("erin@example.com".into())),
                },
            ],
            ..task("review", "role:security", vec![])
        },
        approval("sign_off", "role:lead", &["review"]),
    ])
}

fn remind(task: &str, step: u32) -> Command {
    Command::Remind { task: task.into(), step }
}

fn escalate(task: &str, step: u32) -> Command {
    Command::Escalate { task: task.into(), step }
}

#[test]
fn only_the_scheduler_sends_reminders_and_each_reminder_once() {
    let mut run = Run::start(timed_template(), &starter());
    run.refuse(&admin("root@example.com"), remind("review", 1), Rule::NotPermitted, "only the scheduler");
    run.refuse(&Actor::system(), remind("review", 2), Rule::InvalidValue, "has no reminder 2");
    let events = run.ok(&Actor::system(), remind("review", 1));
    assert_eq!(events[0].body, EventBody::TaskReminded { task: "review".into(), step: 1 });
    assert_eq!(run.task("review").reminded, vec![1]);
    run.refuse(&Actor::system(), remind("review", 1), Rule::AlreadyCompleted, "reminder 1 of task 'review'");
}

#[test]
fn escalation_steps_notify_then_reassign_and_never_repeat() {
    let mut run = Run::start(timed_template(), &starter());
    let events = run.ok(&Actor::system(), escalate("review", 1));
    assert_eq!(
        events[0].body,
        EventBody::TaskEscalated { task: "review".into(), step: 1, notify: Some("role:lead".into()), reassign: None }
    );
    run.refuse(&Actor::system(), escalate("review", 1), Rule::AlreadyCompleted, "already been escalated to step 1");
    let events = run.ok(&Actor::system(), escalate("review", 2));
    assert_eq!(types(&events), ["task_escalated", "task_reassigned"]);
    assert_eq!(
        events[1].body,
        EventBody::TaskReassigned {
            task: "review".into(),
            to: "user:erin@example.com".into(),
            cause: "escalation step 2: overdue by 3d".into()
        }
    );
    run.refuse(&security(), complete("review", &[]), Rule::NotAssignee, "(assigned to user:erin@example.com)");
    run.refuse(&Actor::system(), escalate("review", 3), Rule::InvalidValue, "has no escalation step 3");
    run.ok(&person("erin@example.com", &[]), complete("review", &[]));
    run.refuse(&Actor::system(), escalate("review", 2), Rule::TaskLocked, "already completed");
    run.refuse(&Actor::system(), remind("review", 1), Rule::TaskLocked, "already completed");
}

#[test]
fn a_task_sent_back_for_rework_starts_a_new_round_of_reminders_and_escalations() {
    let mut run = Run::start(timed_template(), &starter());
    run.ok(&Actor::system(), remind("review", 1));
    run.ok(&Actor::system(), escalate("review", 1));
    run.ok(&security(), complete("review", &[]));
    run.ok(&person("lee@example.com", &["lead"]), reject("sign_off", "redo it"));
    assert!(run.task("review").reminded.is_empty());
    assert_eq!(run.task("review").escalated, None);
    run.ok(&Actor::system(), remind("review", 1));
    run.ok(&Actor::system(), escalate("review", 1));
}

// ----- a run's own deadline ----------------------------------------------------

#[test]
fn a_run_deadline_is_recorded_in_whole_seconds_and_older_starts_read_without_one() {
    let template = compile(template(vec![task("request", "starter", vec![])]));
    let due = ts("2026-03-06T17:00:00.250Z");
    let start = Command::Start { run: "run-1".into(), name: "Due run".into(), due_at: Some(due) };
    let (events, state) = execute(&template, None, &start, &starter(), ts("2026-03-02T09:00:00Z")).expect("starts");
    assert_eq!(state.due_at, Some(ts("2026-03-06T17:00:00Z")), "whole seconds");
    let json = serde_json::to_value(&events[0]).expect("serialises");
    assert_eq!(json["due_at"], "2026-03-06T17:00:00Z");
    // An event written before runs had deadlines has no due_at and folds as before.
    let mut old = json.clone();
    old.as_object_mut().expect("an object").remove("due_at");
    let old: Event = serde_json::from_value(old).expect("an older run_started still reads");
    let replayed = RunState::replay(&template, &[old]).expect("folds");
    assert_eq!(replayed.due_at, None);
    assert!(!serde_json::to_string(&replayed).expect("serialises").contains("due_at"), "absent, not null");
}

// ----- Every field problem at once (for forms) -----------------------------------

#[test]
fn field_problems_lists_every_field_problem_a_command_would_refuse_one_at_a_time() {
    let number = FieldKind::Number(NumberRules { min: Some(0.0), ..NumberRules::default() });
    let t = template(vec![task(
        "request",
        "user:sam@example.com",
        vec![
            required("name", FieldKind::Text(TextRules::default())),
            field("spend", number),
            field("contact", FieldKind::Email(EmailRules::default())),
            field("personal", FieldKind::Checkbox),
            Field { show_when: Some(when("personal", Op::Is, json!(true))), ..field("dpa", FieldKind::Url) },
            required("due", FieldKind::Date(DateRules::default())),
        ],
    )]);
    let run = Run::start(t, &starter());
    let bad = [("spend", json!(-5)), ("contact", json!("not an email")), ("dpa", json!("https://example.com/dpa"))];
    let problems = attest_engine::field_problems(&run.template, &run.state, "request", &values(&bad), true);
    let found: Vec<(Option<&str>, Rule)> = problems.iter().map(|p| (p.field.as_deref(), p.rule)).collect();
    assert_eq!(
        found,
        [
            (Some("name"), Rule::RequiredField),
            (Some("spend"), Rule::InvalidValue),
            (Some("contact"), Rule::InvalidValue),
            (Some("dpa"), Rule::HiddenField),
            (Some("due"), Rule::RequiredField),
        ],
        "{problems:?}"
    );
    // Each is the refusal the command itself gives for that field alone.
    for (key, value) in bad.clone() {
        let command = set("request", &[(key, value)]);
        let refusal = run.refused(&starter(), command);
        let listed = problems.iter().find(|p| p.field.as_deref() == Some(key)).expect("listed");
        assert_eq!((&refusal.rule, &refusal.message), (&listed.rule, &listed.message));
    }
    let refusal = run.refused(&starter(), complete("request", &[]));
    assert_eq!(refusal.message, problems[0].message, "completing refuses the first missing field as listed");
    // Saving (not completing) does not ask for required fields, and good values have no problems.
    let saving = attest_engine::field_problems(&run.template, &run.state, "request", &values(&bad[..1]), false);
    assert_eq!(saving.len(), 1, "{saving:?}");
    let good = [("name", json!("Acme")), ("personal", json!(true)), ("dpa", json!("https://example.com/dpa"))];
    let mut good = good.to_vec();
    good.push(("due", json!("2026-04-01")));
    assert_eq!(attest_engine::field_problems(&run.template, &run.state, "request", &values(&good), true), []);
    let mut run = run;
    run.ok(&starter(), complete("request", &good));
}
