//! The command line's shape.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "attest", version, about = "Compliance processes with built-in enforcement and audit-ready proof")]
pub struct Args {
    /// The data directory holding the workspace.
    #[arg(long, global = true, env = "ATTEST_DATA", default_value = "./attest-data")]
    pub data: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a new workspace in the data directory, with its first admin.
    Init {
        /// The admin's email.
        #[arg(long, default_value = "admin@example.com")]
        admin: String,
        /// The admin's display name.
        #[arg(long, default_value = "Admin")]
        admin_name: String,
        /// The workspace's name.
        #[arg(long, default_value = "Attest workspace")]
        name: String,
    },
    /// A short guided tour: a workspace, a vendor onboarding run, the rules at work.
    Demo,
    /// Design: validate, publish and read workflow templates.
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Execute: start, list, show and cancel runs.
    #[command(subcommand)]
    Run(RunCmd),
    /// Do the work: fill in, complete, approve, reject, comment on tasks.
    #[command(subcommand)]
    Task(TaskCmd),
    /// The open tasks a person may act on, overdue first.
    Inbox {
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
    },
    /// People of the workspace.
    #[command(subcommand)]
    User(UserCmd),
    /// Workspace roles.
    #[command(subcommand)]
    Role(RoleCmd),
    /// Prove: checkpoints, the public key, full verification.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Serve the REST API (first start on an empty data directory seeds a workspace).
    Serve {
        /// The address to listen on.
        #[arg(long, env = "ATTEST_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Verify an evidence pack offline: no data directory, no network.
    Verify {
        file: PathBuf,
        /// Verifier key to trust instead of the one inside the pack.
        #[arg(long)]
        key: Option<String>,
    },
    /// Process mining: statistics, DFG, variants, conformance, drafting templates from logs.
    #[command(subcommand)]
    Mine(MineCmd),
    /// Export the workspace's runs for other tools.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Process metrics of a template (cycle time, throughput, rates, controls,
    /// bottlenecks, overdue now); without a template, the workspace overview.
    Metrics {
        /// The template's key.
        template: Option<String>,
        /// Only runs of this version.
        #[arg(long, requires = "template")]
        version: Option<u32>,
        /// Put this version beside `--version`.
        #[arg(long, requires = "version")]
        compare: Option<u32>,
        /// Runs started on or after this day (YYYY-MM-DD, UTC).
        #[arg(long)]
        from: Option<String>,
        /// Runs started on or before this day (YYYY-MM-DD, UTC).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MineCmd {
    #[command(flatten)]
    Log(attest_mining::cli::MineCommand),
    /// Draft a template from a log: one task per activity in the dominant order.
    Draft {
        #[command(flatten)]
        log: attest_mining::cli::LogArgs,
        /// The drafted template's key (default: from the log's file name).
        #[arg(long)]
        key: Option<String>,
        /// The drafted template's name (default: from the log's file name).
        #[arg(long)]
        name: Option<String>,
        /// Write the template here (YAML, or JSON for .json) instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// The runs as an XES event log (one trace per run, one event per task
    /// completion, approval or rejection), for pm4py, ProM or Celonis.
    Xes {
        /// Only the runs of this template.
        #[arg(long)]
        template: Option<String>,
        /// The XES file to write (gzipped when it ends in .gz).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Print the workspace's checkpoint verifier key (public).
    Key,
    /// Sign a checkpoint of the ledger now.
    Checkpoint,
    /// List the signed checkpoints.
    Checkpoints,
    /// Write an evidence pack: one run (`--run`) or an audit period (`--from`/`--to`).
    Export {
        #[arg(long, conflicts_with_all = ["from", "to"])]
        run: Option<String>,
        /// First day of the period (YYYY-MM-DD or RFC 3339), inclusive.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last day of the period (YYYY-MM-DD or RFC 3339), inclusive.
        #[arg(long, requires = "from")]
        to: Option<String>,
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Recompute the whole ledger and check it against the tree, every
    /// checkpoint, the runs and the evidence files. Exit 1 if anything is wrong.
    Verify {
        /// Verifier key to trust (defaults to the key file in the data directory).
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// Check a template file and report every problem with its location.
    Validate { file: PathBuf },
    /// Publish a template file as a new immutable version.
    Publish {
        file: PathBuf,
        /// Who publishes; defaults to the local operator.
        #[arg(long = "as", value_name = "EMAIL")]
        actor: Option<String>,
    },
    /// List the published templates.
    List,
    /// Show a published template version.
    Show {
        key: String,
        #[arg(long)]
        version: Option<u32>,
        /// Print the template itself as YAML.
        #[arg(long)]
        yaml: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunCmd {
    /// Start a run of the latest version of a template; prints the run id.
    Start {
        template: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Show a run with its tasks, values and history.
    Show { run: String },
    /// List runs, newest first.
    List {
        #[arg(long)]
        template: Option<String>,
        #[arg(long, value_parser = ["open", "completed", "cancelled"])]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Cancel an open run, with a reason.
    Cancel {
        run: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(long)]
        reason: String,
    },
    /// Replay a run's stored events and check they give its stored state.
    Replay { run: String },
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Set field values (FIELD=VALUE, or FIELD:=JSON for lists and tables).
    Set {
        run: String,
        task: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(value_name = "FIELD=VALUE", required = true)]
        values: Vec<String>,
    },
    /// Complete a task, optionally setting values first.
    Complete {
        run: String,
        task: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(value_name = "FIELD=VALUE")]
        values: Vec<String>,
    },
    /// Approve an approval task.
    Approve {
        run: String,
        task: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject an approval task, sending its subjects back for rework.
    Reject {
        run: String,
        task: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(long)]
        comment: String,
    },
    /// Comment on a task.
    Comment {
        run: String,
        task: String,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        text: String,
    },
    /// Attach an evidence file to a task, optionally filling a file field.
    Attach {
        run: String,
        task: String,
        file: PathBuf,
        #[arg(long = "as", value_name = "EMAIL")]
        actor: String,
        #[arg(long)]
        field: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a person to the workspace.
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Roles to grant at once (repeatable).
        #[arg(long)]
        role: Vec<String>,
        /// Make the person a workspace admin.
        #[arg(long)]
        admin: bool,
    },
    /// List the people of the workspace with their roles.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Grant a role to a person.
    Grant { email: String, role: String },
    /// Revoke a role from a person.
    Revoke { email: String, role: String },
}
