//! Size limits the validator enforces.
//!
//! They keep every template small enough to edit comfortably and cheap to
//! evaluate on every change of a value; real processes stay far below them.

/// Tasks in one template.
pub const MAX_TASKS: usize = 500;
/// Fields on one task.
pub const MAX_FIELDS_PER_TASK: usize = 200;
/// Characters in a name or label: template, task, control, field, column, option.
pub const MAX_NAME_CHARS: usize = 200;
/// Characters in a template description or task instructions.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Characters in a field's help text.
pub const MAX_HELP_CHARS: usize = 2_000;
/// Characters in a short reference: policy id and clause, framework reference.
pub const MAX_REF_CHARS: usize = 100;
/// Characters in a URL (policy link, url field default).
pub const MAX_URL_CHARS: usize = 2_048;
/// Roles declared by one template.
pub const MAX_ROLES: usize = 200;
/// Controls declared by one template.
pub const MAX_CONTROLS: usize = 500;
/// Framework references on one control.
pub const MAX_FRAMEWORK_REFS: usize = 50;
/// Options of one select or multi_choice field.
pub const MAX_OPTIONS: usize = 500;
/// Columns of one table field.
pub const MAX_COLUMNS: usize = 50;
/// Entries in `accept`, `allow_domains` or `block_domains`.
pub const MAX_LIST_ITEMS: usize = 500;
/// Levels of nested conditions, counting the outermost as 1.
pub const MAX_CONDITION_DEPTH: usize = 16;
/// Conditions directly inside one `all` or `any`.
pub const MAX_CONDITION_ITEMS: usize = 100;
/// Characters in a field's `pattern`.
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// Bytes the compiled `pattern` may take, so that a short pattern with large
/// repetitions cannot make the server build a huge automaton.
pub const MAX_PATTERN_PROGRAM_BYTES: usize = 1 << 20;
/// Reminders on one task.
pub const MAX_REMINDERS: usize = 10;
/// Escalation steps on one task.
pub const MAX_ESCALATIONS: usize = 10;
/// Digits after the decimal point a number field may ask for.
pub const MAX_DECIMALS: u32 = 15;
/// Days a date bound may be shifted either way (about 1,900 years).
pub const MAX_DATE_OFFSET_DAYS: i32 = 700_000;
