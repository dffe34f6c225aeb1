//! Drafts: saved while incomplete, refused when they do not read (storing
//! nothing), guarded by revision, and published only through the validator.

use attest_core::drafts::{DraftStart, read_draft};
use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Error, Workspace};
use attest_engine::{Actor, ActorKind};
use attest_store::DraftStore;
use attest_store_sqlite::SqliteStore;
use jiff::Timestamp;

const VENDOR: &str = include_str!("../../../examples/vendor-onboarding.yaml");

struct Fixture {
    _tmp: tempfile::TempDir,
    ws: Workspace,
    drafts: SqliteStore,
    owner: Actor,
    now: Timestamp,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let (ws, _) = init_data_dir(&dir, "drafts", "admin@example.com", "Admin", now).expect("init");
    let owner =
        Actor { kind: ActorKind::Person, id: "admin@example.com".into(), roles: Default::default(), admin: true };
    let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
    ws.publish(&owner, template, now).expect("publish");
    let drafts = SqliteStore::open(dir.database()).expect("store");
    Fixture { _tmp: tmp, ws, drafts, owner, now }
}

#[test]
fn a_draft_of_a_version_publishes_as_the_next_version_and_is_gone() {
    let f = fixture();
    let start = DraftStart::Version { key: "vendor-onboarding".into(), version: None };
    let draft = f.ws.create_draft(&f.drafts, &f.owner, &start, f.now).expect("draft");
    assert_eq!((draft.base_version, draft.revision), (Some(1), 1));
    let edited = draft.source.replace("name: Vendor onboarding\n", "name: Vendor onboarding 2\n");
    assert_ne!(edited, draft.source);
    let rev = f.ws.save_draft(&f.drafts, &f.owner, &draft.id, 1, &edited, f.now).expect("save");
    let ledger_before = f.ws.store().ledger_size().expect("size");
    let out = f.ws.publish_draft(&f.drafts, &f.owner, &draft.id, rev, f.now).expect("publish");
    assert_eq!((out.version, out.unchanged), (2, false));
    assert_eq!(f.ws.store().ledger_size().expect("size"), ledger_before + 1, "one TemplatePublished event");
    assert!(f.drafts.draft(&draft.id).expect("read").is_none());
}

#[test]
fn a_draft_that_does_not_read_is_refused_and_nothing_is_stored() {
    let f = fixture();
    let start = DraftStart::Version { key: "vendor-onboarding".into(), version: Some(1) };
    let draft = f.ws.create_draft(&f.drafts, &f.owner, &start, f.now).expect("draft");
    let bad = draft.source.replace("assignee: starter", "assignee: starter\n    stopp: true");
    let Err(Error::InvalidTemplate(diags)) = f.ws.save_draft(&f.drafts, &f.owner, &draft.id, 1, &bad, f.now) else {
        panic!("an unknown key must be refused")
    };
    assert_eq!(diags.len(), 1);
    assert!(diags[0].path.starts_with("tasks[0]") && diags[0].line.is_some(), "{diags:?}");
    let stored = f.drafts.draft(&draft.id).expect("read").expect("still there");
    assert_eq!((stored.revision, stored.source), (1, draft.source));
}

#[test]
fn an_invalid_draft_is_saved_but_not_published() {
    let f = fixture();
    let start = DraftStart::Version { key: "vendor-onboarding".into(), version: None };
    let draft = f.ws.create_draft(&f.drafts, &f.owner, &start, f.now).expect("draft");
    let invalid = draft.source.replace("assignee: role:security", "assignee: role:auditors");
    let rev = f.ws.save_draft(&f.drafts, &f.owner, &draft.id, 1, &invalid, f.now).expect("a draft may be invalid");
    let check = Workspace::check_draft(&invalid);
    assert!(!check.is_valid());
    assert!(check.errors.iter().any(|d| d.path == "tasks[1].assignee" && d.line.is_some()), "{:?}", check.errors);
    let ledger_before = f.ws.store().ledger_size().expect("size");
    assert!(matches!(f.ws.publish_draft(&f.drafts, &f.owner, &draft.id, rev, f.now), Err(Error::InvalidTemplate(_))));
    assert_eq!(f.ws.store().ledger_size().expect("size"), ledger_before);
    assert!(f.drafts.draft(&draft.id).expect("read").is_some(), "the draft stays for fixing");
}

#[test]
fn publishing_a_stale_revision_is_a_conflict() {
    let f = fixture();
    let start = DraftStart::Version { key: "vendor-onboarding".into(), version: None };
    let draft = f.ws.create_draft(&f.drafts, &f.owner, &start, f.now).expect("draft");
    f.ws.save_draft(&f.drafts, &f.owner, &draft.id, 1, &draft.source, f.now).expect("save");
    assert!(matches!(f.ws.publish_draft(&f.drafts, &f.owner, &draft.id, 1, f.now), Err(Error::Conflict(_))));
}

#[test]
fn a_blank_draft_needs_a_good_new_key() {
    let f = fixture();
    let blank = |key: &str| DraftStart::Blank { key: key.into(), name: "Laptop request".into() };
    let Err(Error::InvalidTemplate(d)) = f.ws.create_draft(&f.drafts, &f.owner, &blank("Laptop Request"), f.now) else {
        panic!("a bad key is refused")
    };
    assert_eq!(d[0].path, "key");
    let Err(Error::InvalidTemplate(d)) = f.ws.create_draft(&f.drafts, &f.owner, &blank("vendor-onboarding"), f.now)
    else {
        panic!("a taken key is refused")
    };
    assert!(d[0].message.contains("exists"));
    assert_eq!(f.drafts.draft_count().expect("count"), 0, "nothing stored");
    let draft = f.ws.create_draft(&f.drafts, &f.owner, &blank("laptop-request"), f.now).expect("draft");
    assert!(Workspace::check_draft(&draft.source).is_valid());
    assert_eq!(read_draft(&draft.source).expect("reads").key, "laptop-request");
}
