//! Abuse limits through a real server: rate limits per address, per key and on checkout
//! (`429`, `Retry-After`, the JSON error body), an address locked out after failed keys,
//! a slow request body cut off, slowloris connections closed, and connections capped per
//! address while other clients are served. The limits do not depend on the database, so
//! these run on SQLite only.

#![allow(clippy::unwrap_used)]

mod common;

use aurelio_api::limits::{LimitsConfig, Rate};
use common::{Db, Server, unique};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn server(limits: LimitsConfig) -> Server {
    Server::start(Db::Sqlite, |c| c.limits = limits)
}

/// A request as from `ip` (the test server trusts `x-forwarded-for`).
async fn get_as(c: &common::Client, ip: &str, path: &str, key: &str) -> common::Resp {
    c.send_with(Method::GET, path, Some(key), common::Payload::None, &[("x-forwarded-for", ip)])
        .await
}

#[test]
fn rate_limits_answer_429_per_address_key_and_checkout() {
    common::run(async {
        let server = server(LimitsConfig {
            client_ip_header: Some("x-forwarded-for".into()),
            per_ip: Rate { per_minute: 60, burst: 20 },
            checkout: Rate { per_minute: 1, burst: 2 },
            auth_failures: Rate { per_minute: 1, burst: 3 },
            ..LimitsConfig::default()
        });
        let c = server.client();
        let shop = c.provision(&unique("limits"), false).await;
        let product = json!({"handle": "tee", "title": "Tee",
            "variants": [{"sku": "TEE-1", "price": "5.00", "inventory": 100}]});
        let product = c
            .send_with(
                Method::POST,
                "/api/v1/products",
                Some(&shop.secret),
                common::Payload::Json(product),
                &[("x-forwarded-for", "198.51.100.9")],
            )
            .await
            .expect(201)
            .json();
        let variant = product["product"]["variants"][0]["id"].as_str().unwrap().to_owned();

        // One address: its burst, then 429 with Retry-After and the error body.
        let mut statuses = Vec::new();
        for _ in 0..21 {
            statuses.push(get_as(&c, "203.0.113.7", "/api/v1/products", &shop.publishable).await);
        }
        assert!(statuses[..20].iter().all(|r| r.status == 200));
        let limited = &statuses[20];
        let error = limited.error(429, "rate_limited", None);
        assert!(error["message"].as_str().unwrap().contains("this address"), "{error}");
        let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        // Another address is not affected.
        get_as(&c, "203.0.113.8", "/api/v1/products", &shop.publishable).await.expect(200);
        // Storefront pages are not API requests: never rate-limited here.
        let page = get_as(&c, "203.0.113.7", "/", "").await;
        assert_ne!(page.status, 429);

        // Checkout is stricter: two per address, then 429 (before any stock is taken).
        let ip = "203.0.113.20";
        let mut answers = Vec::new();
        for _ in 0..3 {
            let body = json!({"lines": [{"variant_id": variant, "quantity": 1}]});
            let cart = c
                .send_with(
                    Method::POST,
                    "/api/v1/carts",
                    Some(&shop.publishable),
                    common::Payload::Json(body),
                    &[("x-forwarded-for", ip)],
                )
                .await
                .expect(201)
                .json();
            let token = cart["cart"]["token"].as_str().unwrap().to_owned();
            let address = json!({"name": "A", "line1": "1 St", "city": "Galway", "country": "IE"});
            let idem = unique("idem");
            answers.push(
                c.send_with(
                    Method::POST,
                    &format!("/api/v1/carts/{token}/checkout"),
                    Some(&shop.publishable),
                    common::Payload::Json(
                        json!({"email": "a@example.com", "shipping_address": address}),
                    ),
                    &[("x-forwarded-for", ip), ("Idempotency-Key", &idem)],
                )
                .await,
            );
        }
        assert_eq!(answers.iter().map(|r| r.status).collect::<Vec<_>>(), [201, 201, 429]);
        answers[2].error(429, "rate_limited", None);
        let products = c.get("/api/v1/products", &shop.secret).await.expect(200).json();
        assert_eq!(products["products"][0]["variants"][0]["inventory"], json!(98));

        // Failed keys: three wrong keys, then even the right key from that address waits.
        let ip = "203.0.113.30";
        for i in 0..3 {
            let wrong = format!("sk_{}", "0".repeat(40 + i));
            assert_eq!(get_as(&c, ip, "/api/v1/products", &wrong).await.status, 401);
        }
        get_as(&c, ip, "/api/v1/products", &shop.secret).await.error(429, "rate_limited", None);
        get_as(&c, "203.0.113.31", "/api/v1/products", &shop.secret).await.expect(200);
    });
}

#[test]
fn slow_clients_are_cut_off_and_connections_capped_per_address() {
    common::run(async {
        let server = server(LimitsConfig {
            header_timeout_ms: 500,
            request_timeout_ms: 1_000,
            max_connections_per_ip: 20,
            ..LimitsConfig::default()
        });
        let addr = server.addr;
        // Slowloris: partial headers, a byte now and then. Each is closed by the server.
        let mut slow = Vec::new();
        for _ in 0..15 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            slow.push(s);
        }
        // The service answers meanwhile (from another address: the cap is per address).
        healthz_from("127.0.0.2", addr).await;
        let started = Instant::now();
        for s in &mut slow {
            let _ = s.write_all(b"X-A: b\r\n").await;
        }
        for mut s in slow {
            let mut buf = [0; 256];
            let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
            let closed = matches!(read, Ok(Ok(0) | Err(_)))
                || matches!(read, Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 408"));
            assert!(closed, "a slow header must be cut off: {read:?}");
        }
        assert!(started.elapsed() < Duration::from_secs(5));

        // A body sent slowly is cut off by the request time limit, with the error body.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
            common::ADMIN
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the server must answer or close within its time limit");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains(r#""code":"timeout""#), "{answer}");

        // Connections per address: 20 idle ones are held, the 21st is closed at once,
        // and another address is still served.
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0; 64];
        let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "the 21st connection must be closed: {read:?}");
        healthz_from("127.0.0.3", addr).await;
        drop(idle);
        // Once they are gone (the server notices the close), the address is served again.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let _ =
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer)).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "places were not given back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// `GET /healthz` over a connection from the loopback address `from`.
async fn healthz_from(from: &str, addr: std::net::SocketAddr) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer))
        .await
        .expect("healthz answers while others are slow")
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}
