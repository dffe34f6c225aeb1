//! Builders for templates. Templates are built in code, as the validated
//! model the engine is given.

use attest_engine::CompiledTemplate;
use attest_template::{Assignee, FORMAT_V1, Field, FieldKind, Task, TaskType, Template};

pub fn template(tasks: Vec<Task>) -> Template {
    Template {
        format: FORMAT_V1.into(),
        key: "test-process".into(),
        name: "Test process".into(),
        description: None,
        owner: Some(Assignee::Role("process-lead".into())),
        policy: None,
        roles: Vec::new(),
        controls: Vec::new(),
        tasks,
    }
}

pub fn compile(template: Template) -> CompiledTemplate {
    CompiledTemplate::new(template, 1, "sha256:test".into()).expect("test templates compile")
}

pub fn task(key: &str, assignee: &str, fields: Vec<Field>) -> Task {
    Task {
        key: key.into(),
        name: key.replace('_', " "),
        task_type: TaskType::Task,
        instructions: None,
        assignee: Assignee::parse(assignee).expect("test assignees are valid"),
        stop: false,
        approves: Vec::new(),
        show_when: None,
        controls: Vec::new(),
        due: None,
        remind: Vec::new(),
        escalate: Vec::new(),
        fields,
        http: None,
    }
}

pub fn approval(key: &str, assignee: &str, approves: &[&str]) -> Task {
    Task {
        task_type: TaskType::Approval,
        approves: approves.iter().map(|s| s.to_string()).collect(),
        ..task(key, assignee, Vec::new())
    }
}

pub fn field(key: &str, kind: FieldKind) -> Field {
    Field { key: key.into(), label: key.into(), kind, required: false, help: None, default: None, show_when: None }
}
