//! Graceful shutdown finishes in-flight requests and the queued commands:
//! every run the API acknowledged is in the store afterwards, and the ledger
//! verifies.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_every_acknowledged_write() {
    let mut s = common::Server::start().await;
    let data = s._dir.path().join("data");
    let running = s.running.take().unwrap();
    let s = Arc::new(s);
    let mut requests = Vec::new();
    for i in 0..60 {
        let s = s.clone();
        requests.push(tokio::spawn(async move {
            let r = s
                .client
                .post(format!("{}/api/v1/runs", s.base))
                .bearer_auth(s.token("member"))
                .json(&json!({"template": "quick-check", "name": format!("shutdown {i}")}))
                .send()
                .await;
            matches!(r, Ok(r) if r.status().as_u16() == 201)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    running.shutdown().await;
    let mut acknowledged = 0;
    for r in requests {
        if r.await.unwrap() {
            acknowledged += 1;
        }
    }
    assert!(acknowledged > 0, "some requests were in flight");
    let ws = attest_core::Workspace::open(&attest_core::DataDir::new(&data)).unwrap();
    let stored = ws
        .runs(&attest_store::RunFilter { template: Some("quick-check".into()), limit: 1000, ..Default::default() })
        .unwrap()
        .len();
    assert!(stored >= acknowledged, "{stored} stored, {acknowledged} acknowledged");
    let key = attest_core::audit::announced_key(&ws).unwrap();
    assert!(attest_core::audit::verify(&ws, &key).unwrap().ok());
}
