//! A workspace's use cases.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, RwLock};

use attest_engine::view::projected_task_views;
use attest_engine::{Actor, ActorKind, Command, CompiledTemplate, Event, RunState, WorkspaceEvent, WorkspaceEventBody};
use attest_store::{
    BlobStore, CommitBytes, DirectoryChange, EntryEvent, FsBlobStore, InboxRow, LedgerEntry, RunCommit, RunFacts,
    RunFilter, RunRow, Store, StoreError, StoreResult, StoredEntry, StoredProjection, StoredRun, TaskRow,
    TemplateVersionRow, UserRow,
};
use attest_store_sqlite::SqliteStore;
use attest_template::{SourceFormat, Template};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::retire::Retirer;
use crate::run_cache::{CachedRun, RUN_CACHE_CAPACITY, RunCache};

/// Largest evidence file accepted, so one upload cannot fill the disk.
pub const MAX_EVIDENCE_BYTES: u64 = 100 * 1024 * 1024;
/// Role and user names are short identifiers.
const MAX_NAME_CHARS: usize = 200;
/// Fewest runs of a batch worth deciding on a second thread while the store
/// writes: below it, starting the thread costs about what it saves.
const PIPELINE_MIN_RUNS: usize = 32;
/// Commits made ahead of the store's writes: enough to keep the writer busy,
/// few enough that a failed write throws little work away.
const PIPELINE_QUEUE_COMMITS: usize = 64;

/// What publishing a template did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishOutcome {
    pub key: String,
    pub version: u32,
    pub content_hash: String,
    /// True when the content equalled the latest version, so nothing was published.
    pub unchanged: bool,
}

/// One command of a group commit.
#[derive(Debug, Clone)]
pub enum BatchItem {
    Start { template: String, name: Option<String>, by: Actor },
    Execute { run: String, command: Command, by: Actor },
}

/// An open workspace: a store, an evidence store, and the rules of time.
#[derive(Debug)]
pub struct Workspace {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    /// The workspace's time zone: due dates and business days are counted in it.
    tz: RwLock<TimeZone>,
    templates: Mutex<HashMap<(String, u32), Arc<CompiledTemplate>>>,
    /// Runs this workspace committed lately, to decide the next command
    /// without reading the run back (see `run_cache`).
    runs: Mutex<RunCache>,
    /// Drops what a group commit leaves behind off the writer's thread.
    retired: Retirer,
}

/// A run as loaded to decide a command on it.
struct LoadedRun {
    compiled: Arc<CompiledTemplate>,
    version: u64,
    /// Shared with the result of the command that made it, when cached; the
    /// command deciding on it copies it only while that result is still held.
    state: Arc<RunState>,
    /// The stored projection, when known without reading it.
    previous: Option<StoredProjection>,
    /// Whether the state came from the run cache, unchecked: it may be behind
    /// a commit made past this workspace until a commit's version check
    /// confirms it.
    cached: bool,
}

impl Workspace {
    /// Opens the workspace in a data directory made by `attest init`.
    pub fn open(dir: &DataDir) -> Result<Self> {
        if !dir.exists() {
            return Err(Error::Setup(format!(
                "no workspace in {}: run `attest init --data {}` first",
                dir.root().display(),
                dir.root().display()
            )));
        }
        let store = Arc::new(SqliteStore::open(dir.database())?);
        let tz = crate::mail::time_zone(store.as_ref())?;
        let ws = Self::with_store(store, Arc::new(FsBlobStore::new(dir.files())));
        ws.set_time_zone(tz);
        // A data directory from before metrics gets its facts once.
        ws.backfill_metric_facts()?;
        Ok(ws)
    }

    pub fn with_store(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> Self {
        Workspace {
            store,
            blobs,
            tz: RwLock::new(TimeZone::UTC),
            templates: Mutex::new(HashMap::new()),
            runs: Mutex::new(RunCache::new(RUN_CACHE_CAPACITY)),
            retired: Retirer::default(),
        }
    }

    /// Creates a workspace with its first admin in an empty data directory.
    pub fn init(
        dir: &DataDir,
        name: &str,
        admin_email: &str,
        admin_name: &str,
        verifier_key: &str,
        now: Timestamp,
    ) -> Result<Self> {
        if dir.exists() {
            return Err(Error::Setup(format!("{} already holds a workspace", dir.root().display())));
        }
        let email = parse_email(admin_email)?;
        std::fs::create_dir_all(dir.root())
            .map_err(|e| Error::Setup(format!("cannot create {}: {e}", dir.root().display())))?;
        let store = SqliteStore::open(dir.database())?;
        let ws = Self::with_store(Arc::new(store), Arc::new(FsBlobStore::new(dir.files())));
        let system = Actor::system();
        ws.store.write_workspace(
            &WorkspaceEvent {
                at: now,
                by: system.clone(),
                body: WorkspaceEventBody::WorkspaceCreated {
                    name: name.to_string(),
                    verifier_key: verifier_key.to_string(),
                },
            },
            &DirectoryChange::CreateWorkspace { name: name.to_string() },
        )?;
        ws.add_user(&system, &email, admin_name, true, now)?;
        Ok(ws)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    pub fn time_zone(&self) -> TimeZone {
        self.tz.read().map(|tz| tz.clone()).unwrap_or(TimeZone::UTC)
    }

    /// Changes the zone due dates are counted in, from the next commit on.
    pub fn set_time_zone(&self, tz: TimeZone) {
        if let Ok(mut current) = self.tz.write() {
            *current = tz;
        }
    }

    // ----- people -----

    /// The actor for a person of the workspace, with their current authority.
    pub fn person(&self, email: &str) -> Result<Actor> {
        let email = parse_email(email)?;
        let user = self
            .store
            .user(&email)?
            .ok_or_else(|| Error::NotFound(format!("no person with email {email} in this workspace")))?;
        Ok(Actor { kind: ActorKind::Person, id: user.email.into(), roles: user.roles.into(), admin: user.admin })
    }

    pub fn add_user(&self, by: &Actor, email: &str, name: &str, admin: bool, now: Timestamp) -> Result<()> {
        let email = parse_email(email)?;
        let name = name.trim();
        let name =
            if name.is_empty() { email.split('@').next().unwrap_or(&email).to_string() } else { name.to_string() };
        check_name(&name, "a display name")?;
        self.store.write_workspace(
            &WorkspaceEvent {
                at: now,
                by: by.clone(),
                body: WorkspaceEventBody::UserAdded { email: email.clone(), name: name.clone(), admin },
            },
            &DirectoryChange::AddUser { email, name, admin },
        )?;
        Ok(())
    }

    pub fn grant_role(&self, by: &Actor, email: &str, role: &str, now: Timestamp) -> Result<()> {
        self.change_role(by, email, role, true, now)
    }

    pub fn revoke_role(&self, by: &Actor, email: &str, role: &str, now: Timestamp) -> Result<()> {
        self.change_role(by, email, role, false, now)
    }

    fn change_role(&self, by: &Actor, email: &str, role: &str, grant: bool, now: Timestamp) -> Result<()> {
        let email = parse_email(email)?;
        let role = parse_role(role)?;
        self.require_user(&email)?;
        let (body, change) = if grant {
            (
                WorkspaceEventBody::RoleGranted { email: email.clone(), role: role.clone() },
                DirectoryChange::GrantRole { email, role },
            )
        } else {
            (
                WorkspaceEventBody::RoleRevoked { email: email.clone(), role: role.clone() },
                DirectoryChange::RevokeRole { email, role },
            )
        };
        self.store.write_workspace(&WorkspaceEvent { at: now, by: by.clone(), body }, &change)?;
        Ok(())
    }

    fn require_user(&self, email: &str) -> Result<UserRow> {
        self.store
            .user(email)?
            .ok_or_else(|| Error::NotFound(format!("no person with email {email} in this workspace")))
    }

    pub fn users(&self) -> Result<Vec<UserRow>> {
        Ok(self.store.users()?)
    }

    // ----- templates -----

    /// Validates a template source without publishing it.
    pub fn validate(source: &str, format: SourceFormat, file_name: Option<&str>) -> Result<Template> {
        if source.len() > attest_template::MAX_TEMPLATE_BYTES {
            return Err(Error::BadInput(format!(
                "the template is {} bytes; the limit is {} bytes",
                source.len(),
                attest_template::MAX_TEMPLATE_BYTES
            )));
        }
        attest_template::parse(source, format, file_name).map_err(Error::InvalidTemplate)
    }

    /// Publishes a template as a new immutable version, unless its content
    /// equals the latest version's.
    pub fn publish(&self, by: &Actor, template: Template, now: Timestamp) -> Result<PublishOutcome> {
        attest_template::validate(&template).map_err(Error::InvalidTemplate)?;
        let content_hash = attest_template::content_hash(&template);
        let latest = self.store.template_version(&template.key, None)?;
        if let Some(latest) = latest.as_ref().filter(|l| l.content_hash == content_hash) {
            return Ok(PublishOutcome { key: template.key, version: latest.version, content_hash, unchanged: true });
        }
        let version = latest.map_or(1, |l| l.version + 1);
        let json = serde_json::to_string(&template).map_err(|e| Error::Other(e.into()))?;
        self.store.write_workspace(
            &WorkspaceEvent {
                at: now,
                by: by.clone(),
                body: WorkspaceEventBody::TemplatePublished {
                    key: template.key.clone(),
                    version,
                    content_hash: content_hash.clone(),
                },
            },
            &DirectoryChange::PublishTemplate {
                key: template.key.clone(),
                name: template.name.clone(),
                version,
                content_hash: content_hash.clone(),
                json,
            },
        )?;
        Ok(PublishOutcome { key: template.key, version, content_hash, unchanged: false })
    }

    pub fn template_row(&self, key: &str, version: Option<u32>) -> Result<TemplateVersionRow> {
        self.store.template_version(key, version)?.ok_or_else(|| match version {
            Some(v) => Error::NotFound(format!("template {key} has no version {v}")),
            None => Error::NotFound(format!("no template with key {key}; publish it first")),
        })
    }

    /// The compiled template version, cached: versions are immutable.
    pub fn compiled(&self, key: &str, version: u32) -> Result<Arc<CompiledTemplate>> {
        let cache_key = (key.to_string(), version);
        if let Some(t) = self.templates.lock().map_err(poisoned)?.get(&cache_key) {
            return Ok(t.clone());
        }
        let row = self.template_row(key, Some(version))?;
        let template: Template = serde_json::from_str(&row.json)
            .map_err(|e| Error::Other(anyhow::anyhow!("stored template {key} v{version} is unreadable: {e}")))?;
        let compiled = Arc::new(
            CompiledTemplate::new(template, version, row.content_hash).map_err(|e| Error::Other(anyhow::anyhow!(e)))?,
        );
        self.templates.lock().map_err(poisoned)?.insert(cache_key, compiled.clone());
        Ok(compiled)
    }

    // ----- runs -----

    /// Starts a run of the latest version of a template.
    pub fn start_run(&self, by: &Actor, template_key: &str, name: Option<&str>, now: Timestamp) -> Result<RunState> {
        let (compiled, events, state) = self.decide_start(by, template_key, name, None, None, now)?;
        Ok(self.commit(&compiled, 0, None, events, state)?.1)
    }

    /// Starts a run with a given id, so that a retried start (a scheduled run
    /// after a crash) is refused as a conflict instead of starting twice;
    /// `due_at` is the run's own deadline, if it has one.
    pub fn start_run_with_id(
        &self,
        by: &Actor,
        template_key: &str,
        name: Option<&str>,
        run_id: &str,
        due_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<RunState> {
        let id = Some(run_id.to_string());
        let (compiled, events, state) = self.decide_start(by, template_key, name, id, due_at, now)?;
        Ok(self.commit(&compiled, 0, None, events, state)?.1)
    }

    /// Decides the start of a new run of the latest version of a template; a
    /// missing or blank name becomes the template's name and the start time.
    pub(crate) fn decide_start(
        &self,
        by: &Actor,
        template_key: &str,
        name: Option<&str>,
        run_id: Option<String>,
        due_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(Arc<CompiledTemplate>, Vec<Event>, RunState)> {
        let compiled = self.latest_compiled(template_key)?;
        let start = start_command(&compiled, name, run_id, due_at, now);
        let (events, state) = attest_engine::execute(&compiled, None, &start, by, now)?;
        Ok((compiled, events, state))
    }

    /// The latest version of a template, compiled: the one a new run starts on.
    fn latest_compiled(&self, template_key: &str) -> Result<Arc<CompiledTemplate>> {
        let row = self.template_row(template_key, None)?;
        self.compiled(template_key, row.version)
    }

    /// Loads a run's state from its projection.
    pub fn run(&self, run_id: &str) -> Result<RunRow> {
        let run_id = checked_run_id(run_id)?;
        let stored = self.store.run(run_id)?.ok_or_else(|| Error::NotFound(format!("no run with id {run_id}")))?;
        self.current(stored)
    }

    /// A stored run's row at its current state: the events after its last
    /// state snapshot folded over the snapshot.
    pub(crate) fn current(&self, stored: StoredRun) -> Result<RunRow> {
        let StoredRun { mut row, tail } = stored;
        if tail.is_empty() {
            return Ok(row);
        }
        let compiled = self.compiled(&row.template_key, row.template_version)?;
        for entry in &tail {
            let event = run_event(entry)?;
            row.state =
                attest_engine::state::apply(&compiled, Some(row.state), &event).map_err(|e| Error::Other(e.into()))?;
        }
        Ok(row)
    }

    /// Loads a run to decide a command on it: from the run cache without
    /// asking the store (the commit's version check catches a stale entry),
    /// else from the store.
    fn load_run(&self, run_id: &str) -> Result<LoadedRun> {
        let run_id = checked_run_id(run_id)?;
        let cached = self.runs.lock().map_err(poisoned)?.take(run_id);
        if let Some(run) = cached {
            let compiled = self.compiled(&run.state.template_key, run.state.version)?;
            let (version, state, previous) = (run.version, run.state, Some(run.projection));
            return Ok(LoadedRun { compiled, version, state, previous, cached: true });
        }
        self.load_stored_run(run_id)
    }

    /// Loads a run from the store, past the run cache.
    fn load_stored_run(&self, run_id: &str) -> Result<LoadedRun> {
        let row = self.run(run_id)?;
        let compiled = self.compiled(&row.template_key, row.template_version)?;
        Ok(LoadedRun { compiled, version: row.version, state: Arc::new(row.state), previous: None, cached: false })
    }

    /// Decides a command on a run and stores its events, or says why not.
    pub fn execute(
        &self,
        run_id: &str,
        command: &Command,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(Vec<Event>, RunState)> {
        let run = self.load_run(run_id)?;
        self.decide_and_commit(run_id, run, command, by, now)
    }

    /// Decides a command on a loaded run and stores its events. A decision on
    /// a cached state stands once its commit lands, as the run's version
    /// check then proves the state current; a refusal, a command that changes
    /// nothing or a conflict on a cached state is decided once more on the
    /// stored run, which another process may have moved.
    fn decide_and_commit(
        &self,
        run_id: &str,
        run: LoadedRun,
        command: &Command,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(Vec<Event>, RunState)> {
        if !run.cached {
            return self.decide_and_commit_stored(run, command, by, now);
        }
        let state = Arc::unwrap_or_clone(run.state);
        if let Ok((events, state)) = attest_engine::execute_owned(&run.compiled, Some(state), command, by, now)
            && !events.is_empty()
        {
            match self.commit(&run.compiled, run.version, run.previous, events, state) {
                Err(Error::Conflict(_)) => {}
                outcome => return outcome,
            }
        }
        self.decide_and_commit_stored(self.load_stored_run(run_id)?, command, by, now)
    }

    /// [`Self::decide_and_commit`] on a run read from the store, whose
    /// decision stands as it is.
    fn decide_and_commit_stored(
        &self,
        run: LoadedRun,
        command: &Command,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(Vec<Event>, RunState)> {
        let state = Arc::unwrap_or_clone(run.state);
        let (events, state) = attest_engine::execute_owned(&run.compiled, Some(state), command, by, now)?;
        self.commit(&run.compiled, run.version, run.previous, events, state)
    }

    /// Builds the commit for a decided command: events plus projection rows
    /// and the run's metric facts.
    pub fn prepare_commit(
        &self,
        compiled: &CompiledTemplate,
        expected_version: u64,
        events: Vec<Event>,
        state: &RunState,
    ) -> Result<RunCommit> {
        self.commit_of(compiled, expected_version, None, events, state.clone())
    }

    /// [`Self::prepare_commit`] taking the state by value, for callers that
    /// are done with it: a state is a deep copy of every value of the run.
    fn commit_of(
        &self,
        compiled: &CompiledTemplate,
        expected_version: u64,
        previous: Option<StoredProjection>,
        events: Vec<Event>,
        state: RunState,
    ) -> Result<RunCommit> {
        let previous_facts = self.previous_facts(compiled, expected_version, previous.as_ref(), &state.run_id)?;
        let work = CommitWork { expected_version, previous, previous_facts, events, state };
        Ok(commit_from(compiled, work, &self.time_zone()))
    }

    /// Keeps a landed commit's run for the next command on it, and hands
    /// back its events and a copy of its state.
    fn remember(&self, commit: RunCommit) -> Result<(Vec<Event>, RunState)> {
        let state = commit.state.clone();
        let (events, _, _) = self.remember_shared(commit)?;
        Ok((events, state))
    }

    /// [`Self::remember`] sharing the state with the caller instead of
    /// copying it. Hands back the events, the state and the projection the
    /// commit replaced.
    fn remember_shared(&self, commit: RunCommit) -> Result<(Vec<Event>, Arc<RunState>, Option<StoredProjection>)> {
        let RunCommit { run_id, events, state, tasks, facts, previous, .. } = commit;
        let state = Arc::new(state);
        let run = CachedRun {
            version: state.event_count,
            state: state.clone(),
            projection: StoredProjection { tasks, facts },
        };
        self.runs.lock().map_err(poisoned)?.put(run_id, run);
        Ok((events, state, previous))
    }

    /// Stores a decided command's events and projection, and hands them back:
    /// they move through the commit instead of being copied into it.
    pub(crate) fn commit(
        &self,
        compiled: &CompiledTemplate,
        expected_version: u64,
        previous: Option<StoredProjection>,
        events: Vec<Event>,
        state: RunState,
    ) -> Result<(Vec<Event>, RunState)> {
        if events.is_empty() {
            // Nothing changed, so what was known of the stored run still holds.
            if let Some(projection) = previous {
                let run = CachedRun { version: expected_version, state: Arc::new(state.clone()), projection };
                self.runs.lock().map_err(poisoned)?.put(state.run_id.clone(), run);
            }
            return Ok((events, state));
        }
        let commit = self.commit_of(compiled, expected_version, previous, events, state)?;
        self.store.write_run(&commit)?;
        self.remember(commit)
    }

    /// Decides many commands and commits them in one transaction (group
    /// commit): one fsync for the batch instead of one per command. Commands on
    /// the same run see each other's effects in order. A refusal affects only
    /// its own item; a conflict on a run fails every item of that run. The
    /// items of a run decided on a cached state that no commit confirmed go
    /// through one more batch, on the stored run.
    ///
    /// An accepted item's state is shared with the run cache rather than
    /// copied: the next command on the run copies it only if the caller
    /// still holds it then.
    pub fn execute_many(&self, items: &[BatchItem], now: Timestamp) -> Result<Vec<Result<Arc<RunState>>>> {
        let mut results: Vec<Option<Result<Arc<RunState>>>> = (0..items.len()).map(|_| None).collect();
        let all: Vec<usize> = (0..items.len()).collect();
        let unconfirmed = self.decide_batch(items, &all, RunSource::CacheFirst, now, &mut results)?;
        if !unconfirmed.is_empty() {
            self.decide_batch(items, &unconfirmed, RunSource::Store, now, &mut results)?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Other(anyhow::anyhow!("batch item was not decided")))))
            .collect())
    }

    /// Decides the `chosen` items of a batch, run by run in the order each
    /// run first appears, commits them in one transaction and writes their
    /// results. Hands back, in order, the items of runs decided on a cached
    /// state that no commit confirmed: their results are still to be decided.
    fn decide_batch(
        &self,
        items: &[BatchItem],
        chosen: &[usize],
        source: RunSource,
        now: Timestamp,
        results: &mut [Option<Result<Arc<RunState>>>],
    ) -> Result<Vec<usize>> {
        let runs = self.load_batch(items, chosen, source, now, results)?;
        let mut unconfirmed = Vec::new();
        let mut retired = Vec::new();
        for (decision, written) in self.decide_and_write(runs, now)? {
            let (landed, conflict) = match written {
                Some((commit, Ok(()))) => {
                    let (events, state, previous) = self.remember_shared(commit)?;
                    retired.push((events, previous));
                    (Some(state), None)
                }
                // The cached state was behind the stored run, or no commit
                // confirms the cached state these were decided on.
                _ if decision.cached => {
                    unconfirmed.extend(decision.decided);
                    continue;
                }
                Some((_, Err(why))) => (None, Some(why)),
                None => (None, None),
            };
            for (i, outcome) in decision.results {
                results[i] = Some(match (outcome, &conflict) {
                    (ItemOutcome::Refused(refusal), _) => Err(refusal),
                    (_, Some(why)) => Err(Error::Conflict(why.clone())),
                    (ItemOutcome::Accepted(state), None) => Ok(state),
                    (ItemOutcome::Committed, None) => landed.clone().ok_or_else(|| {
                        Error::Other(anyhow::anyhow!("the commit of an accepted batch item was not written"))
                    }),
                });
            }
        }
        if !retired.is_empty() {
            self.retired.retire(retired);
        }
        unconfirmed.sort_unstable();
        Ok(unconfirmed)
    }

    /// Reads what deciding the `chosen` items of a batch needs from the
    /// store, grouped by run in the order each run first appears: deciding
    /// them then needs no store, so it can go on beside the store's writes.
    /// An item whose run cannot be loaded gets its error in `results`.
    fn load_batch<'i>(
        &self,
        items: &'i [BatchItem],
        chosen: &[usize],
        source: RunSource,
        now: Timestamp,
        results: &mut [Option<Result<Arc<RunState>>>],
    ) -> Result<Vec<BatchRun<'i>>> {
        let mut runs: Vec<BatchRun<'i>> = Vec::new();
        let mut positions: HashMap<&'i str, usize> = HashMap::new();
        // Each template's latest version is read once per batch, not once per start.
        let mut latest: HashMap<&'i str, Arc<CompiledTemplate>> = HashMap::new();
        for &i in chosen {
            match &items[i] {
                BatchItem::Start { template, name, by } => {
                    let compiled = match latest.get(template.as_str()) {
                        Some(compiled) => compiled.clone(),
                        None => match self.latest_compiled(template) {
                            Ok(compiled) => latest.entry(template).or_insert(compiled).clone(),
                            Err(e) => {
                                results[i] = Some(Err(e));
                                continue;
                            }
                        },
                    };
                    let start = start_command(&compiled, name.as_deref(), None, None, now);
                    runs.push(BatchRun::Start { item: i, compiled, start, by });
                }
                BatchItem::Execute { run, command, by } => {
                    if let Some(&at) = positions.get(run.as_str())
                        && let BatchRun::Execute { items, .. } = &mut runs[at]
                    {
                        items.push((i, command, by));
                        continue;
                    }
                    let loaded = match source {
                        RunSource::CacheFirst => self.load_run(run),
                        RunSource::Store => self.load_stored_run(run),
                    };
                    // A run that cannot be loaded is tried again by its next item.
                    let loaded = match loaded {
                        Ok(loaded) => loaded,
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    };
                    // Facts known from the run cache are copied on the deciding
                    // thread; only unknown ones are read here.
                    let stored_facts = match loaded.previous {
                        Some(_) => None,
                        None => self.previous_facts(&loaded.compiled, loaded.version, None, run)?,
                    };
                    positions.insert(run, runs.len());
                    runs.push(BatchRun::Execute { run: loaded, stored_facts, items: vec![(i, command, by)] });
                }
            }
        }
        Ok(runs)
    }

    /// Decides a batch's loaded runs and writes their commits in one
    /// transaction. A large batch is decided, and its commits made, on a
    /// second thread while the store writes the commits made before, so
    /// that both cores work. Each decision comes back with its commit and
    /// the commit's outcome, if it made one.
    fn decide_and_write(&self, runs: Vec<BatchRun<'_>>, now: Timestamp) -> Result<Vec<(RunDecision, Option<Written>)>> {
        let tz = self.time_zone();
        if runs.len() < PIPELINE_MIN_RUNS {
            let mut decisions = Vec::with_capacity(runs.len());
            let mut commits = Vec::new();
            for run in runs {
                let (decision, work) = decide_run(run, now);
                decisions.push((decision, work.is_some()));
                commits.extend(work.map(|(compiled, w)| commit_from(&compiled, w, &tz)));
            }
            let outcomes = self.store.write_runs(&commits)?;
            return Ok(with_written(decisions, commits.into_iter().zip(outcomes)));
        }
        std::thread::scope(|scope| {
            let (sender, receiver) = sync_channel(PIPELINE_QUEUE_COMMITS);
            let tz = &tz;
            let producer = std::thread::Builder::new()
                .name("attest-commits".into())
                .spawn_scoped(scope, move || {
                    let mut decisions = Vec::with_capacity(runs.len());
                    for run in runs {
                        let (decision, work) = decide_run(run, now);
                        decisions.push((decision, work.is_some()));
                        let Some((compiled, w)) = work else { continue };
                        let commit = commit_from(&compiled, w, tz);
                        let made = CommitBytes::new(&commit).map(|bytes| (commit, bytes));
                        let failed = made.is_err();
                        // A send fails once the writer has stopped: nothing
                        // more it could use.
                        if sender.send(Some(made)).is_err() || failed {
                            return decisions;
                        }
                    }
                    // Whether the writer still listens changes nothing now.
                    sender.send(None).ok();
                    decisions
                })
                .map_err(|e| Error::Other(anyhow::anyhow!("cannot start a thread to decide a batch: {e}")))?;
            let mut commits = Streamed { receiver, ended: false };
            let written = self.store.write_runs_streamed(&mut commits);
            // Stops a producer the writer left behind, so the join returns.
            drop(commits);
            let Ok(decisions) = producer.join() else {
                return Err(Error::Other(anyhow::anyhow!("deciding a batch panicked; nothing was written")));
            };
            Ok(with_written(decisions, written?.into_iter()))
        })
    }

    /// Stores an evidence file and attaches it to a task (and a file field).
    #[expect(clippy::too_many_arguments, reason = "each argument is a distinct input of one upload")]
    pub fn attach(
        &self,
        run_id: &str,
        task: &str,
        field: Option<&str>,
        file_name: &str,
        content: &mut dyn std::io::Read,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(Vec<Event>, RunState)> {
        let name = sanitize_file_name(file_name)?;
        // An unknown run is refused before any bytes are stored; a command the
        // engine refuses afterwards leaves only a harmless content-addressed file.
        let run = self.load_run(run_id)?;
        let (sha256, size) = self.blobs.put(content, MAX_EVIDENCE_BYTES)?;
        let file = attest_engine::FileRef {
            media_type: media_type(&name).into(),
            name: name.into(),
            size,
            sha256: sha256.into(),
        };
        let command = Command::AttachEvidence { task: task.to_string(), field: field.map(str::to_string), file };
        self.decide_and_commit(run_id, run, &command, by, now)
    }

    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        self.store.runs(filter)?.into_iter().map(|stored| self.current(stored)).collect()
    }

    /// The open tasks a person may act on, overdue first.
    pub fn inbox(&self, person: &Actor) -> Result<Vec<InboxRow>> {
        let mut principals = vec![format!("user:{}", person.id)];
        principals.extend(person.roles.iter().map(|r| format!("role:{r}")));
        Ok(self.store.inbox(&principals)?)
    }

    /// The stored events of a run, decoded, in order.
    pub fn run_events(&self, run_id: &str) -> Result<Vec<(u64, Event)>> {
        self.store.run_events(run_id)?.iter().map(|stored| Ok((stored.seq, run_event(stored)?))).collect()
    }

    /// Replays a run's stored events and checks they give the stored state.
    pub fn replay(&self, run_id: &str) -> Result<RunState> {
        let row = self.run(run_id)?;
        let compiled = self.compiled(&row.template_key, row.template_version)?;
        let events: Vec<Event> = self.run_events(run_id)?.into_iter().map(|(_, e)| e).collect();
        let state = RunState::replay(&compiled, &events).map_err(|e| Error::Other(e.into()))?;
        if state != row.state {
            return Err(Error::Other(anyhow::anyhow!(
                "run {run_id}: replaying its events does not give the stored state"
            )));
        }
        Ok(state)
    }
}

/// Where a batch loads the runs it decides on.
#[derive(Debug, Clone, Copy)]
enum RunSource {
    /// The run cache, unchecked, else the store.
    CacheFirst,
    Store,
}

/// The command that starts a new run of `compiled`; a missing or blank name
/// becomes the template's name and the start time.
fn start_command(
    compiled: &CompiledTemplate,
    name: Option<&str>,
    run_id: Option<String>,
    due_at: Option<Timestamp>,
    now: Timestamp,
) -> Command {
    let run = run_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => format!("{} {}", compiled.template.name, now.strftime("%Y-%m-%d %H:%M")),
    };
    Command::Start { run, name, due_at }
}

/// A run of a batch with what deciding its items needs from the store, read
/// already: the items, each with its position in the batch.
#[expect(
    clippy::large_enum_variant,
    reason = "runs sit in one vector, moved once; a box would cost an allocation each"
)]
enum BatchRun<'i> {
    Start { item: usize, compiled: Arc<CompiledTemplate>, start: Command, by: &'i Actor },
    Execute { run: LoadedRun, stored_facts: Option<RunFacts>, items: Vec<(usize, &'i Command, &'i Actor)> },
}

/// What deciding an item of a batch gave it.
enum ItemOutcome {
    /// Accepted, with its own copy of the state after it.
    Accepted(Arc<RunState>),
    /// Accepted as its run's last accepted item: the state after it is the
    /// commit's, shared once the commit lands.
    Committed,
    Refused(Error),
}

/// What deciding one run's items of a batch gave.
struct RunDecision {
    /// Each decided item's outcome; an item put off for the stored run has none.
    results: Vec<(usize, ItemOutcome)>,
    /// Every item of the run, refused and put off ones too.
    decided: Vec<usize>,
    /// Whether the run came from the run cache, unchecked.
    cached: bool,
}

/// A written commit and its outcome: a conflict says why.
type Written = (RunCommit, std::result::Result<(), String>);

/// Pairs decisions, in order, with the written commits of those that made one.
fn with_written(
    decisions: Vec<(RunDecision, bool)>,
    mut written: impl Iterator<Item = Written>,
) -> Vec<(RunDecision, Option<Written>)> {
    decisions.into_iter().map(|(decision, made)| (decision, if made { written.next() } else { None })).collect()
}

/// Decides one run's items of a batch, in order, and gathers what its
/// commit needs. It reads nothing from the store, so it can go on beside
/// the store's writes.
fn decide_run(run: BatchRun<'_>, now: Timestamp) -> (RunDecision, Option<(Arc<CompiledTemplate>, CommitWork)>) {
    match run {
        BatchRun::Start { item, compiled, start, by } => {
            let mut decision = RunDecision { results: Vec::new(), decided: vec![item], cached: false };
            match attest_engine::execute(&compiled, None, &start, by, now) {
                Ok((events, state)) => {
                    decision.results.push((item, ItemOutcome::Committed));
                    let work = CommitWork { expected_version: 0, previous: None, previous_facts: None, events, state };
                    (decision, Some((compiled, work)))
                }
                Err(refusal) => {
                    decision.results.push((item, ItemOutcome::Refused(refusal.into())));
                    (decision, None)
                }
            }
        }
        BatchRun::Execute { run, stored_facts, items } => {
            let LoadedRun { compiled, version, state, previous, cached } = run;
            let mut decision = RunDecision {
                results: Vec::with_capacity(items.len()),
                decided: items.iter().map(|&(i, ..)| i).collect(),
                cached,
            };
            // Unshared unless the caller of the command that cached it still
            // holds its result.
            let mut state = Some(Arc::unwrap_or_clone(state));
            let mut events = Vec::new();
            // Where in `results` the latest accepted item is: its result is
            // the state as it stands, copied only if a later item changes it.
            let mut latest_accepted: Option<usize> = None;
            let mut any_accepted = false;
            for (n, &(i, command, by)) in items.iter().enumerate() {
                // A cached state refused an earlier item: the run's items wait
                // for the stored run, in order.
                let Some(current) = state.take() else { break };
                if let Some(at) = latest_accepted.take() {
                    decision.results[at].1 = ItemOutcome::Accepted(Arc::new(current.clone()));
                }
                // Deciding on the state itself saves a copy of it per command,
                // but a refusal drops it. A stored state is kept for the items
                // after a refusal until one is accepted; after that, the last
                // accepted item's state stands in for it.
                let keep = !cached && !any_accepted && n + 1 < items.len();
                let (outcome, kept) = if keep {
                    (attest_engine::execute(&compiled, Some(&current), command, by, now), Some(current))
                } else {
                    (attest_engine::execute_owned(&compiled, Some(current), command, by, now), None)
                };
                match outcome {
                    Ok((more, next)) => {
                        events.extend(more);
                        latest_accepted = Some(decision.results.len());
                        decision.results.push((i, ItemOutcome::Committed));
                        any_accepted = true;
                        state = Some(next);
                    }
                    Err(refusal) => {
                        let last_accepted = decision.results.iter().rev().find_map(|(_, outcome)| match outcome {
                            ItemOutcome::Accepted(state) => Some(RunState::clone(state)),
                            _ => None,
                        });
                        decision.results.push((i, ItemOutcome::Refused(refusal.into())));
                        state = kept.or(last_accepted);
                    }
                }
            }
            let work = match state {
                Some(state) if !events.is_empty() => {
                    let previous_facts = match &previous {
                        Some(projection) => Some(projection.facts.clone()),
                        None => stored_facts,
                    };
                    Some((compiled, CommitWork { expected_version: version, previous, previous_facts, events, state }))
                }
                // Accepted items that changed nothing make no commit: the
                // latest one's result is the state itself.
                Some(state) => {
                    if let Some(at) = latest_accepted {
                        decision.results[at].1 = ItemOutcome::Accepted(Arc::new(state));
                    }
                    None
                }
                None => None,
            };
            (decision, work)
        }
    }
}

/// A run's decided events with everything its commit needs from the store
/// read already, so that making the commit is CPU work alone.
struct CommitWork {
    expected_version: u64,
    previous: Option<StoredProjection>,
    previous_facts: Option<RunFacts>,
    events: Vec<Event>,
    state: RunState,
}

/// Builds the commit for decided events: events plus projection rows and
/// the run's metric facts.
fn commit_from(compiled: &CompiledTemplate, work: CommitWork, tz: &TimeZone) -> RunCommit {
    let CommitWork { expected_version, previous, previous_facts, events, state } = work;
    // The views at the last event, which is the state's update time.
    let views = projected_task_views(compiled, &state, state.updated_at, tz);
    let facts = crate::metrics::facts::advance_with_views(previous_facts, compiled, &events, &state, &views, tz);
    let tasks = views
        .into_iter()
        .map(|v| TaskRow {
            status: v.status.as_str().to_string(),
            key: v.key,
            name: v.name,
            approval: v.approval,
            due_at: v.due_at,
            // Only open tasks name theirs (`projected_task_views`).
            assignees: v.assignees,
        })
        .collect();
    RunCommit { run_id: state.run_id.clone(), expected_version, events, state, tasks, facts, previous }
}

/// The commits a second thread makes, in order, up to its end mark; a
/// thread gone before its end mark stopped early, which fails the write.
struct Streamed {
    receiver: Receiver<Option<StoreResult<(RunCommit, CommitBytes)>>>,
    ended: bool,
}

impl Iterator for Streamed {
    type Item = StoreResult<(RunCommit, CommitBytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        match self.receiver.recv() {
            Ok(Some(made)) => Some(made),
            Ok(None) => {
                self.ended = true;
                None
            }
            Err(_) => {
                self.ended = true;
                Some(Err(StoreError::Other(anyhow::anyhow!("a batch's commits stopped coming before the last one"))))
            }
        }
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Other(anyhow::anyhow!("a workspace cache lock is poisoned"))
}

/// Decodes a stored entry that must be a run's event.
fn run_event(stored: &StoredEntry) -> Result<Event> {
    let entry = LedgerEntry::decode(&stored.bytes)
        .map_err(|e| Error::Other(anyhow::anyhow!("ledger entry {} is unreadable: {e}", stored.seq)))?;
    match entry.event {
        EntryEvent::Run(e) => Ok(e),
        EntryEvent::Workspace(_) => {
            Err(Error::Other(anyhow::anyhow!("ledger entry {} is not a run event", stored.seq)))
        }
    }
}

/// Validates a run id at the edge: ids are short and never blank.
fn checked_run_id(run_id: &str) -> Result<&str> {
    let run_id = run_id.trim();
    if run_id.is_empty() || run_id.len() > 64 {
        return Err(Error::BadInput(format!("'{run_id}' is not a run id")));
    }
    Ok(run_id)
}

/// Validates an email at the edge: lowercase, one `@`, a dotted domain.
pub fn parse_email(s: &str) -> Result<String> {
    let email = s.trim().to_ascii_lowercase();
    attest_engine::value::email_syntax(&email).map_err(Error::BadInput)?;
    Ok(email)
}

/// Role keys: lowercase letters, digits, `-` and `_`.
pub fn parse_role(s: &str) -> Result<String> {
    let role = s.trim();
    let valid = !role.is_empty()
        && role.len() <= 64
        && role.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(role.to_string())
    } else {
        Err(Error::BadInput(format!("'{role}' is not a role key: use lowercase letters, digits, '-' and '_'")))
    }
}

fn check_name(s: &str, what: &str) -> Result<()> {
    if s.chars().count() > MAX_NAME_CHARS || s.chars().any(char::is_control) {
        return Err(Error::BadInput(format!("{what} must be at most {MAX_NAME_CHARS} printable characters")));
    }
    Ok(())
}

/// Keeps only the last path component, refusing names that could escape a
/// directory or hide as dot files.
pub fn sanitize_file_name(name: &str) -> Result<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() || base == "." || base == ".." || base.len() > 255 || base.chars().any(char::is_control) {
        return Err(Error::BadInput(format!("'{name}' is not a usable file name")));
    }
    Ok(base.to_string())
}

/// The media type recorded for an evidence file, from its extension.
pub fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// Creates a data directory: the signing key (owner-only), the database, the
/// workspace and its first admin. Returns the workspace and its verifier key.
pub fn init_data_dir(
    dir: &DataDir,
    name: &str,
    admin_email: &str,
    admin_name: &str,
    now: Timestamp,
) -> Result<(Workspace, String)> {
    if dir.exists() {
        return Err(Error::Setup(format!("{} already holds a workspace", dir.root().display())));
    }
    let email = parse_email(admin_email)?;
    check_name(name, "a workspace name")?;
    let origin = format!("attest/{}", uuid::Uuid::now_v7());
    let signer = attest_ledger::note::SignerKey::generate(&origin).map_err(|e| Error::Other(e.into()))?;
    let verifier = signer.verifier_key().to_string();
    std::fs::create_dir_all(dir.keys())
        .map_err(|e| Error::Setup(format!("cannot create {}: {e}", dir.keys().display())))?;
    write_secret(&dir.signing_key(), signer.to_text().as_bytes())?;
    let ws = Workspace::init(dir, name, &email, admin_name, &verifier, now)?;
    Ok((ws, verifier))
}

/// Writes a file that only its owner may read.
fn write_secret(path: &std::path::Path, content: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| Error::Setup(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(content)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Setup(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_that_stop_before_their_end_mark_fail_the_write() {
        let (sender, receiver) = sync_channel(1);
        let mut commits = Streamed { receiver, ended: false };
        drop(sender);
        assert!(matches!(commits.next(), Some(Err(StoreError::Other(_)))));
        assert!(commits.next().is_none(), "the failure is said once");
    }

    #[test]
    fn commits_end_at_their_end_mark() {
        let (sender, receiver) = sync_channel(1);
        let mut commits = Streamed { receiver, ended: false };
        sender.send(None).expect("the receiver listens");
        assert!(commits.next().is_none());
        drop(sender);
        assert!(commits.next().is_none(), "a producer gone after its end mark finished");
    }
}
