//! The service-task executor: for each run the dispatcher marked, finds the
//! `type: http` tasks whose call is due, makes the call, and issues the engine
//! command as Attest (the system actor): complete the task with the mapped
//! values, or record that the call failed so its assignee can retry or take
//! over. Transient failures are retried with backoff, durably (the attempt
//! count is in the store), under a lease so only one process calls at a time.
//!
//! A call is made at least once: if the process dies after the endpoint
//! answered and before the result is stored, the call is made again.

use std::sync::Arc;
use std::time::Duration;

use attest_core::service::{self, ServiceRequest};
use attest_core::{Error, Workspace};
use attest_engine::{Actor, Command, due_service_tasks};
use attest_store::hooks::{HookStore, ServiceRunRow};
use attest_template::HttpCall;
use jiff::SignedDuration;

use crate::webhooks::{HookConfig, read_bounded};

/// What one call gave.
enum Outcome {
    /// 2xx with the values for the task's fields.
    Done(attest_engine::Values),
    /// Worth another attempt (no answer, 408, 429, 5xx).
    Transient(String),
    /// Final: another status, or a response that does not fit.
    Failed(String),
}

async fn call(client: &reqwest::Client, config: &HookConfig, http: &HttpCall, req: ServiceRequest) -> Outcome {
    if let Some(allowed) = &config.allowed_hosts {
        let host = reqwest::Url::parse(&req.url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        if !host.is_some_and(|h| allowed.contains(&h)) {
            return Outcome::Failed("the URL's host is not in ATTEST_OUTBOUND_HOSTS".into());
        }
    }
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut builder = client
        .request(method, &req.url)
        .timeout(Duration::from_secs(u64::from(http.timeout_seconds)))
        .header("accept", "application/json");
    if let Some(body) = req.body {
        builder = builder.header("content-type", "application/json").body(body);
    }
    let res = match builder.send().await {
        Ok(res) => res,
        Err(e) if e.is_timeout() => return Outcome::Transient(format!("timed out after {} s", http.timeout_seconds)),
        Err(e) if e.is_connect() => return Outcome::Transient("could not connect".into()),
        Err(e) => return Outcome::Transient(format!("request failed: {}", e.without_url())),
    };
    let status = res.status().as_u16();
    let body = match read_bounded(res, config.service_max_response_bytes).await {
        Ok((_, true)) => {
            return Outcome::Failed(format!("the response is larger than {} bytes", config.service_max_response_bytes));
        }
        Ok((body, false)) => body,
        Err(e) if e.is_timeout() => return Outcome::Transient(format!("timed out after {} s", http.timeout_seconds)),
        Err(e) => return Outcome::Transient(format!("reading the response failed: {}", e.without_url())),
    };
    if !(200..300).contains(&status) {
        let why = format!("the endpoint answered {status}");
        return if service::is_transient(Some(status)) { Outcome::Transient(why) } else { Outcome::Failed(why) };
    }
    match service::map_response(http, &body) {
        Ok(values) => Outcome::Done(values),
        Err(why) => Outcome::Failed(why),
    }
}

/// Works one marked run: makes the first due call, if any, and records what came of it.
pub async fn work_run(
    ws: Arc<Workspace>,
    hooks: Arc<dyn HookStore>,
    client: reqwest::Client,
    config: HookConfig,
    owner: String,
    marked: ServiceRunRow,
) -> anyhow::Result<()> {
    let (w, id) = (ws.clone(), marked.run.clone());
    let due = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let row = w.run(&id)?;
        let compiled = w.compiled(&row.template_key, row.template_version)?;
        let first = due_service_tasks(&compiled, &row.state).into_iter().next();
        Ok(first.and_then(|i| {
            let task = compiled.template.tasks.get(i)?;
            let http = task.http.clone()?;
            let request = service::render(&http, &row.state.values);
            Some((task.key.clone(), http, request))
        }))
    })
    .await??;
    let Some((task, http, request)) = due else {
        let h = hooks.clone();
        tokio::task::spawn_blocking(move || h.finish_service_run(&owner, &marked)).await??;
        return Ok(());
    };
    let outcome = call(&client, &config, &http, request).await;
    let now = config.clock.now();
    let command = match outcome {
        Outcome::Done(values) => Command::Complete { task: task.clone(), values },
        Outcome::Transient(why) if marked.attempts < http.retries => {
            let delay_ms = config.service_first_delay_ms.saturating_mul(1 << marked.attempts.min(16)).min(60_000);
            let due_at = now.checked_add(SignedDuration::from_millis(delay_ms as i64)).unwrap_or(now);
            tracing::info!(run = %marked.run, task = %task, attempt = marked.attempts + 1, error = %why, "service call failed; retrying");
            let h = hooks.clone();
            let run = marked.run.clone();
            tokio::task::spawn_blocking(move || h.retry_service_run(&owner, &run, marked.attempts + 1, due_at))
                .await??;
            return Ok(());
        }
        Outcome::Transient(why) => Command::FailService {
            task: task.clone(),
            error: format!("{why} (after {} attempts)", marked.attempts + 1),
        },
        Outcome::Failed(why) => Command::FailService { task: task.clone(), error: why },
    };
    let run = marked.run.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let decided = ws.execute(&run, &command, &Actor::system(), now);
        let fallback = match decided {
            // The run moved meanwhile: look at it again soon.
            Err(Error::Conflict(_)) => {
                hooks.retry_service_run(&owner, &run, marked.attempts, now)?;
                return Ok(());
            }
            // The response does not fit the task: that is the call's failure.
            Err(Error::Refused(r)) if matches!(command, Command::Complete { .. }) => Some(Command::FailService {
                task: task.clone(),
                error: format!("the response was refused: {}", r.message),
            }),
            // Someone completed or cancelled by hand meanwhile; nothing to record.
            Err(Error::Refused(_)) | Ok(_) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(fail) = fallback {
            match ws.execute(&run, &fail, &Actor::system(), now) {
                Ok(_) | Err(Error::Refused(_)) => {}
                Err(Error::Conflict(_)) => {
                    hooks.retry_service_run(&owner, &run, marked.attempts, now)?;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        hooks.finish_service_run(&owner, &marked)?;
        Ok(())
    })
    .await??;
    Ok(())
}
