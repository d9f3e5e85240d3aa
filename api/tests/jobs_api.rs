//! The jobs API on SQLite and PostgreSQL: a shop sees its own jobs (builds queued by its
//! writes), filtered and paged; never another shop's; the admin token sees platform jobs
//! (the scheduled domain checks and pruning) and may retry a dead job; bad filters get a
//! clear 422.

mod common;

use aurelio_api::jobs::{JobError, Kind, NewJob};
use common::{ADMIN, Db, Server, product, unique};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

both!(a_shop_sees_its_own_jobs, the_admin_sees_every_job_and_retries_dead_ones);

async fn a_shop_sees_its_own_jobs(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let shop = api.provision(&unique("jobs"), false).await;
    let other = api.provision(&unique("jobs-other"), false).await;
    let made = api.post("/api/v1/products", &shop.secret, product("a", "A-1", "1.00")).await;
    let build_id = made.expect(201).json()["build_id"].as_str().expect("a build id").to_owned();
    api.wait_build(&shop.secret, &build_id).await;

    let listed = api.get("/api/v1/jobs?kind=build", &shop.secret).await.expect(200).json();
    let jobs = listed["jobs"].as_array().expect("jobs");
    assert!(jobs.len() >= 2, "the provisioning build and the product's: {listed}");
    assert!(jobs.iter().all(|j| j["kind"] == "build" && j["shop_id"] == json!(shop.id)));
    let ids: BTreeSet<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    assert!(ids.contains(build_id.as_str()));

    let one = api.get(&format!("/api/v1/jobs/{build_id}"), &shop.secret).await.expect(200).json();
    assert_eq!(one["status"], "succeeded", "{one}");
    assert_eq!(one["attempts"], 1);
    assert_eq!(one["progress"]["stage"], "published", "the last stage reported: {one}");
    assert!(one["result"]["pages"].as_u64().expect("pages") > 0, "{one}");
    assert!(one["lease_until"].is_null(), "a finished job holds no lease: {one}");

    // Another shop's job is not found, whatever the key's role; a publishable key may not
    // list jobs at all.
    api.get(&format!("/api/v1/jobs/{build_id}"), &other.secret).await.error(404, "not_found", None);
    let theirs = api.get("/api/v1/jobs", &other.secret).await.expect(200).json();
    assert!(
        theirs["jobs"].as_array().expect("jobs").iter().all(|j| j["shop_id"] == json!(other.id)),
        "{theirs}"
    );
    api.get("/api/v1/jobs", &shop.publishable).await.error(403, "forbidden", None);
    api.get("/api/v1/jobs?shop=x", &shop.secret).await.error(403, "forbidden", None);

    // Paging: one job a page, newest first, every job once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/jobs?limit=1".to_owned();
    loop {
        let page = api.get(&path, &shop.secret).await.expect(200).json();
        let jobs = page["jobs"].as_array().expect("jobs");
        assert!(jobs.len() <= 1);
        seen.extend(jobs.iter().map(|j| j["id"].as_str().expect("id").to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/jobs?limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() < 100, "paging ends");
    }
    let all = api.get("/api/v1/jobs?limit=200", &shop.secret).await.expect(200).json();
    let all: Vec<String> = all["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(seen, all, "pages of one give the list, in order");

    for (query, field) in [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=nonsense", "cursor"),
        ("kind=a%20b", "kind"),
    ] {
        let path = format!("/api/v1/jobs?{query}");
        api.get(&path, &shop.secret).await.error(422, "validation_failed", Some(field));
    }
    api.get("/api/v1/jobs/job_nothing", &shop.secret).await.error(404, "not_found", None);
}

async fn the_admin_sees_every_job_and_retries_dead_ones(db: Db) {
    let server = Server::shared(db);
    let api = server.client();
    let platform_jobs = api.get("/api/v1/jobs?platform=true&limit=200", ADMIN).await.expect(200);
    let kinds: BTreeSet<String> = platform_jobs.json()["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            assert!(j["shop_id"].is_null(), "a platform job has no shop: {j}");
            j["kind"].as_str().expect("kind").to_owned()
        })
        .collect();
    assert!(kinds.contains("domains.check"), "the scheduled domain checks: {kinds:?}");
    assert!(kinds.contains("jobs.prune"), "the scheduled pruning: {kinds:?}");
    let scheduled = api.get("/api/v1/jobs?kind=jobs.prune", ADMIN).await.expect(200).json();
    assert_eq!(scheduled["jobs"][0]["schedule"], "jobs.prune", "{scheduled}");

    // A kind that always fails with a retryable error ends `dead` after its attempts, with
    // its error; the admin may queue it again with fresh attempts.
    let shop = api.provision(&unique("jobs-dead"), false).await;
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    let kind = format!("test.dead{}", common::random_hex(3));
    server.platform.jobs.register(
        Kind::new(Box::leak(kind.clone().into_boxed_str()), move |_, _| {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move { Err::<Value, _>(JobError::retry(format!("attempt {n} failed"))) }
        })
        .attempts(2)
        .backoff(std::time::Duration::from_millis(10), std::time::Duration::from_millis(10)),
    );
    let mut finished = server.platform.jobs.finished();
    let id = aurelio_api::jobs::enqueue(&server.platform, NewJob::shop(&kind, &shop.id, "test"))
        .await
        .expect("queued");
    let job = wait_until(&api, &id, &mut finished, |j| j["status"] == "dead").await;
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["error"]["message"], "attempt 2 failed", "{job}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let listed = api.get(&format!("/api/v1/jobs?status=dead&shop={}", shop.id), ADMIN).await;
    assert_eq!(listed.expect(200).json()["jobs"][0]["id"], json!(id));

    api.post(&format!("/api/v1/jobs/{id}/retry"), &shop.secret, json!({})).await.error(
        401,
        "unauthorized",
        None,
    );
    let retried = api.post(&format!("/api/v1/jobs/{id}/retry"), ADMIN, json!({})).await;
    let retried = retried.expect(202).json();
    // Queued with no attempts made, or already claimed again by the dispatcher.
    assert!(retried["status"] != "dead" && retried["attempts"].as_i64() <= Some(1), "{retried}");
    let job = wait_until(&api, &id, &mut finished, |j| j["status"] == "dead").await;
    assert_eq!(job["attempts"], 2, "a fresh budget, spent again: {job}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    let succeeded = format!("/api/v1/jobs/{}/retry", build_of(&api, &shop).await);
    api.post(&succeeded, ADMIN, json!({})).await.error(409, "conflict", Some("status"));
}

/// A succeeded build job of the shop.
async fn build_of(api: &common::Client, shop: &common::Shop) -> String {
    let page = api.get("/api/v1/jobs?kind=build&status=succeeded", &shop.secret).await;
    page.expect(200).json()["jobs"][0]["id"].as_str().expect("a build").to_owned()
}

/// Waits (at most a minute) until the job satisfies `done`, waking when jobs finish.
async fn wait_until(
    api: &common::Client,
    id: &str,
    finished: &mut tokio::sync::watch::Receiver<String>,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Duration::from_secs(60);
    tokio::time::timeout(deadline, async {
        loop {
            finished.borrow_and_update();
            let job = api.get(&format!("/api/v1/jobs/{id}"), ADMIN).await.expect(200).json();
            if done(&job) {
                return job;
            }
            // Woken by the next finished job, or within a second (a retry's backoff).
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(1), finished.changed()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("job {id} did not get there within {deadline:?}"))
}
