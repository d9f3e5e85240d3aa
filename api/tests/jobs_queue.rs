//! The job system itself, on SQLite and PostgreSQL, with kinds registered by the test:
//! retries with backoff and their outcomes, timeouts, progress while running, schedules
//! that keep running across a restart, and two dispatchers on one registry that never run
//! one job, or two jobs with one unique key, at once.

#![allow(clippy::unwrap_used)]

mod common;

use aurelio_api::jobs::{self, JobError, Kind, NewJob, Schedule, Timing};
use aurelio_api::{Config, Platform, Running};
use common::{ADMIN, Db, postgres_url, random_hex, repo_path};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(retries_timeouts_and_progress, schedules_survive_a_restart, two_dispatchers_share_the_queue);

/// A server on `data` (and a PostgreSQL registry named `db_name`), with `workers` slots.
async fn server(db: &Db, data: &std::path::Path, db_name: &str, workers: usize) -> Running {
    let database_url = (*db == Db::Postgres).then(|| {
        let mut url = postgres_url();
        url.set_path(&format!("/{db_name}"));
        url.to_string()
    });
    let config = Config {
        data_dir: data.to_owned(),
        database_url,
        admin_token: Some(ADMIN.into()),
        demo_catalog: repo_path("fixtures/demo-store"),
        workers,
        job_lease: Duration::from_millis(900),
        ..Config::default()
    };
    let platform = Platform::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    aurelio_api::start(platform, listener).await.unwrap()
}

fn db_name() -> String {
    let secs = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    format!("aurelio_t_{secs:08x}{}", random_hex(3))
}

fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// Waits (at most a minute) until the job is in one of `states`; the job.
async fn settled(platform: &Platform, id: &str, states: &[&str]) -> jobs::JobOut {
    let mut finished = platform.jobs.finished();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            finished.borrow_and_update();
            let job = jobs::get(platform, id, None).await.unwrap();
            if states.contains(&job.status.as_str()) {
                return job;
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), finished.changed()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("job {id} did not reach {states:?}"))
}

async fn retries_timeouts_and_progress(db: Db) {
    let data = tempfile::tempdir().unwrap();
    let running = server(&db, data.path(), &db_name(), 2).await;
    let platform = running.platform.clone();

    // Fails twice (retryable), then succeeds: attempts 3, spaced by the backoff.
    let tries = Arc::new(Mutex::new(Vec::<std::time::Instant>::new()));
    let seen = tries.clone();
    let flaky = leak(format!("test.flaky{}", random_hex(2)));
    platform.jobs.register(
        Kind::new(flaky, move |_, job| {
            seen.lock().unwrap().push(std::time::Instant::now());
            async move {
                if job.attempt < 3 {
                    Err(JobError::retry(format!("not yet ({})", job.attempt)))
                } else {
                    Ok(json!({ "payload": job.payload }))
                }
            }
        })
        .backoff(Duration::from_millis(100), Duration::from_millis(400)),
    );
    let id = jobs::enqueue(&platform, NewJob::platform(flaky, "test").payload(json!({"n": 7})))
        .await
        .unwrap();
    let job = settled(&platform, &id, &["succeeded", "dead", "failed"]).await;
    assert_eq!((job.status.as_str(), job.attempts), ("succeeded", 3), "{job:?}");
    assert_eq!(job.result, Some(json!({"payload": {"n": 7}})));
    let times = tries.lock().unwrap().clone();
    assert!(times[1] - times[0] >= Duration::from_millis(100), "backoff 100 ms: {times:?}");
    assert!(times[2] - times[1] >= Duration::from_millis(200), "then 200 ms: {times:?}");

    // A fatal error is not retried.
    let fatal = leak(format!("test.fatal{}", random_hex(2)));
    platform
        .jobs
        .register(Kind::new(fatal, |_, _| async { Err::<Value, _>(JobError::fatal("bad input")) }));
    let id = jobs::enqueue(&platform, NewJob::platform(fatal, "test")).await.unwrap();
    let job = settled(&platform, &id, &["failed", "dead", "succeeded"]).await;
    assert_eq!((job.status.as_str(), job.attempts), ("failed", 1), "{job:?}");
    assert_eq!(job.error, Some(json!({"message": "bad input"})));

    // An attempt past its timeout is stopped, and counts as a failed attempt.
    let slow = leak(format!("test.slow{}", random_hex(2)));
    platform.jobs.register(
        Kind::new(slow, |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!({}))
        })
        .attempts(1)
        .timeout(Duration::from_millis(200)),
    );
    let id = jobs::enqueue(&platform, NewJob::platform(slow, "test")).await.unwrap();
    let job = settled(&platform, &id, &["dead", "failed", "succeeded"]).await;
    assert_eq!(job.status, "dead", "{job:?}");
    assert!(job.error.unwrap()["message"].as_str().unwrap().contains("timeout"));

    // Progress is visible while the job runs, and its lease is renewed past its length.
    let gate = Arc::new(tokio::sync::Notify::new());
    let opened = gate.clone();
    let long = leak(format!("test.progress{}", random_hex(2)));
    platform.jobs.register(Kind::new(long, move |_, job| {
        let gate = opened.clone();
        async move {
            job.progress(2, 5, "counting");
            gate.notified().await;
            Ok(json!({}))
        }
    }));
    let id = jobs::enqueue(&platform, NewJob::platform(long, "test")).await.unwrap();
    let running_job = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let job = jobs::get(&platform, &id, None).await.unwrap();
            if job.status == "running" && job.progress.is_some() {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job runs and reports progress");
    let progress = running_job.progress.unwrap();
    assert_eq!((progress.done, progress.total, progress.stage.as_str()), (2, 5, "counting"));
    // Three lease lengths later it is still this worker's.
    tokio::time::sleep(Duration::from_millis(2700)).await;
    let job = jobs::get(&platform, &id, None).await.unwrap();
    assert_eq!((job.status.as_str(), job.attempts), ("running", 1), "{job:?}");
    gate.notify_one();
    let job = settled(&platform, &id, &["succeeded", "failed", "dead"]).await;
    assert_eq!(job.status, "succeeded");
    running.shutdown().await.unwrap();
}

async fn schedules_survive_a_restart(db: Db) {
    let data = tempfile::tempdir().unwrap();
    let name = db_name();
    let kind = leak(format!("test.tick{}", random_hex(2)));
    let runs = Arc::new(AtomicU32::new(0));
    let in_flight = Arc::new(AtomicU32::new(0));
    let register = |platform: &Platform| {
        let (runs, in_flight) = (runs.clone(), in_flight.clone());
        platform.jobs.register(
            Kind::new(kind, move |_, _| {
                let (runs, in_flight) = (runs.clone(), in_flight.clone());
                async move {
                    let before = in_flight.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    runs.fetch_add(1, Ordering::SeqCst);
                    if before > 0 {
                        return Err(JobError::fatal("two runs of the schedule at once"));
                    }
                    Ok(json!({}))
                }
            })
            .concurrency(4),
        );
    };
    let first = server(&db, data.path(), &name, 4).await;
    register(&first.platform);
    let every = Schedule::platform(kind, Timing::Every(Duration::from_millis(50)));
    jobs::set_schedule(&first.platform, &every).await.unwrap();
    let bad = Schedule::platform(kind, Timing::Cron("*/5 * * *".into()));
    let refused = jobs::set_schedule(&first.platform, &bad).await.unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("schedule"), "{}", refused.message);
    wait_for(|| runs.load(Ordering::SeqCst) >= 3, "three runs").await;
    first.shutdown().await.unwrap();

    // A new process on the same registry: the schedule goes on without being set again.
    let before = runs.load(Ordering::SeqCst);
    let second = server(&db, data.path(), &name, 4).await;
    register(&second.platform);
    second.platform.jobs.wake();
    wait_for(|| runs.load(Ordering::SeqCst) >= before + 3, "three more runs").await;
    let listed = jobs::schedules(&second.platform).await.unwrap();
    assert!(listed.iter().any(|s| s.name == kind && s.timing == "every 50 ms"), "{listed:?}");
    let page = jobs::list(
        &second.platform,
        &jobs::JobFilter { kind: Some(kind.to_owned()), limit: 200, ..Default::default() },
    )
    .await
    .unwrap();
    let live = page.jobs.iter().filter(|j| j.status == "queued" || j.status == "running").count();
    // (None for a moment after a run finished, before the next is queued.)
    assert!(live <= 1, "one run of the schedule is queued or running at a time: {live}");
    assert!(page.jobs.iter().all(|j| j.status != "failed"), "no two runs at once: {page:?}");
    assert!(jobs::remove_schedule(&second.platform, kind).await.unwrap());
    second.shutdown().await.unwrap();
}

async fn two_dispatchers_share_the_queue(db: Db) {
    let data = tempfile::tempdir().unwrap();
    let name = db_name();
    let kind = leak(format!("test.shared{}", random_hex(2)));
    let ran: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let busy: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let overlaps: Arc<Mutex<Vec<String>>> = Arc::default();
    let register = |platform: &Platform| {
        let (ran, busy, overlaps) = (ran.clone(), busy.clone(), overlaps.clone());
        platform.jobs.register(
            Kind::new(kind, move |_, job| {
                let (ran, busy, overlaps) = (ran.clone(), busy.clone(), overlaps.clone());
                async move {
                    let key = job.payload["key"].as_str().unwrap_or_default().to_owned();
                    if !key.is_empty() {
                        let mut busy = busy.lock().unwrap();
                        let n = busy.entry(key.clone()).or_default();
                        *n += 1;
                        if *n > 1 {
                            overlaps.lock().unwrap().push(key.clone());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(if key.is_empty() {
                        15
                    } else {
                        150
                    }))
                    .await;
                    if !key.is_empty() {
                        *busy.lock().unwrap().get_mut(&key).unwrap() -= 1;
                    }
                    *ran.lock().unwrap().entry(job.id.clone()).or_default() += 1;
                    Ok(json!({}))
                }
            })
            .concurrency(4),
        );
    };
    // The first process makes the registry; then both run the same queue.
    let a = server(&db, data.path(), &name, 4).await;
    register(&a.platform);
    let b = server(&db, data.path(), &name, 4).await;
    register(&b.platform);
    let mut ids = Vec::new();
    // Forty jobs without a key, queued through both processes: each runs once.
    for i in 0..40 {
        let platform = if i % 2 == 0 { &a.platform } else { &b.platform };
        let job = NewJob::platform(kind, "test").unique(None);
        ids.push(jobs::enqueue(platform, job).await.unwrap());
    }
    // Jobs with a key, each queued while the one before it runs: they wait their turn.
    for round in 0..3 {
        for k in 0..2 {
            let key = format!("key{k}");
            let platform = if (round + k) % 2 == 0 { &a.platform } else { &b.platform };
            let job = NewJob::platform(kind, "test")
                .payload(json!({ "key": key }))
                .unique(Some(format!("{kind}:{key}")));
            let id = jobs::enqueue(platform, job).await.unwrap();
            ids.push(id.clone());
            if k == 1 {
                wait_running(&a.platform, &id).await;
            }
        }
    }
    for id in &ids {
        let job = settled(&a.platform, id, &["succeeded", "failed", "dead"]).await;
        assert_eq!(job.status, "succeeded", "{job:?}");
    }
    let ran = ran.lock().unwrap().clone();
    assert_eq!(ran.len(), ids.len(), "every job ran");
    assert!(ran.values().all(|n| *n == 1), "and once: {ran:?}");
    assert!(overlaps.lock().unwrap().is_empty(), "jobs of one key overlapped: {overlaps:?}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Waits until the job runs (or ran).
async fn wait_running(platform: &Platform, id: &str) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while jobs::get(platform, id, None).await.unwrap().status == "queued" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("job {id} never started"));
}

async fn wait_for(done: impl Fn() -> bool, what: &str) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited a minute for {what}"));
}
