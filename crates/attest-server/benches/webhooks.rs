//! Webhook throughput: deliveries per second from a server to a receiver on
//! loopback, dispatch (ledger to delivery rows) and signed sending included.
//!
//! The ledger is filled first with the worker off (N run starts, one event
//! each, one subscription for every event), then a server starts with the
//! worker on and the clock runs until the receiver has seen N deliveries.
//!
//! `cargo bench -p attest-server --bench webhooks` (env: `ATTEST_BENCH_EVENTS`,
//! default 5000; `ATTEST_BENCH_CONCURRENCY`, deliveries in flight, default 64).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use attest_core::hooks::NewSubscription;
use attest_core::{BatchItem, DataDir};
use attest_engine::Actor;
use attest_server::Config;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events: usize = std::env::var("ATTEST_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let concurrency: u32 = std::env::var("ATTEST_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(events, concurrency));
}

async fn run(events: usize, concurrency: u32) {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    let receiver_task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let url = format!("http://{receiver}/hook");
    let prepared = tokio::task::spawn_blocking(move || {
        let seeded = attest_core::seed::seed_data_dir(&dir, jiff::Timestamp::now()).unwrap();
        let ws = seeded.workspace;
        let store = attest_store_sqlite::SqliteStore::open(dir.database()).unwrap();
        let sub = NewSubscription {
            url,
            secret: attest_server::webhooks::new_secret(),
            template: Some("vendor-onboarding".into()),
            event_types: vec!["run_started".into()],
        };
        ws.create_subscription(&store, &Actor::system(), sub, jiff::Timestamp::now()).unwrap();
        let starter = ws.person("rita@example.com").unwrap();
        for chunk in (0..events).collect::<Vec<_>>().chunks(500) {
            let items: Vec<BatchItem> = chunk
                .iter()
                .map(|i| BatchItem::Start {
                    template: "vendor-onboarding".into(),
                    name: Some(format!("bench {i}")),
                    by: starter.clone(),
                })
                .collect();
            for r in ws.execute_many(&items, jiff::Timestamp::now()).unwrap() {
                r.unwrap();
            }
        }
        dir
    })
    .await
    .unwrap();

    let mut config = Config::new(prepared.root());
    config.hooks.poll_ms = 10;
    config.hooks.concurrency = concurrency;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let start = Instant::now();
    let running = attest_server::start(config, listener).await.unwrap();
    while (received.load(Ordering::Relaxed) as usize) < events {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "deliveries stalled at {}",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    running.shutdown().await;
    receiver_task.abort();
    println!(
        "webhooks: {events} deliveries in {:.2} s = {:.0} deliveries/s (dispatch + signed POST + log, {concurrency} in flight)",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
}
