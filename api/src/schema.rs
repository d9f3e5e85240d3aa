//! The database schemas as migrations, in SQL both SQLite and PostgreSQL accept: ids and
//! documents are `TEXT`, numbers and times (Unix milliseconds) `BIGINT`, money integer
//! minor units. New versions are appended; applied ones never change.

use crate::db::Migration;

/// The registry: shops, keys, domains, jobs, audit log.
pub const REGISTRY: &[Migration] = &[
    (
        1,
        &[
            "CREATE TABLE shops (
            id TEXT PRIMARY KEY,
            handle TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            db_name TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            role TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            label TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT
        )",
            "CREATE INDEX api_keys_shop ON api_keys (shop_id)",
            "CREATE TABLE domains (
            hostname TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
            token TEXT NOT NULL,
            is_primary BIGINT NOT NULL DEFAULT 0,
            ownership TEXT NOT NULL,
            routing TEXT NOT NULL,
            certificate TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            created_at BIGINT NOT NULL,
            verified_at BIGINT
        )",
            "CREATE INDEX domains_shop ON domains (shop_id)",
            "CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            shop_id TEXT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            run_after BIGINT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            worker TEXT,
            created_at BIGINT NOT NULL,
            started_at BIGINT,
            finished_at BIGINT,
            result TEXT,
            error TEXT
        )",
            "CREATE INDEX jobs_queue ON jobs (status, run_after)",
            "CREATE INDEX jobs_shop ON jobs (shop_id, created_at)",
            "CREATE TABLE audit_log (
            id TEXT PRIMARY KEY,
            shop_id TEXT,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            at BIGINT NOT NULL
        )",
            "CREATE INDEX audit_log_shop ON audit_log (shop_id, at)",
        ],
    ),
    (
        2,
        &[
            // Custom domains: the check schedule, takeovers of hostnames another shop verified,
            // certificates (sealed), the ACME account (sealed) and HTTP-01 challenge answers.
            "ALTER TABLE domains ADD COLUMN checks BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE domains ADD COLUMN failures BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE domains ADD COLUMN window_start BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE domains ADD COLUMN last_checked_at BIGINT",
            "ALTER TABLE domains ADD COLUMN next_check_at BIGINT",
            "ALTER TABLE domains ADD COLUMN cert_not_after BIGINT",
            "ALTER TABLE domains ADD COLUMN cert_retry_at BIGINT",
            "CREATE INDEX domains_due ON domains (next_check_at)",
            "CREATE TABLE domain_takeovers (
            hostname TEXT NOT NULL,
            shop_id TEXT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
            token TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            created_at BIGINT NOT NULL,
            window_start BIGINT NOT NULL,
            checks BIGINT NOT NULL DEFAULT 0,
            last_checked_at BIGINT,
            next_check_at BIGINT,
            PRIMARY KEY (hostname, shop_id)
        )",
            "CREATE INDEX domain_takeovers_due ON domain_takeovers (next_check_at)",
            "CREATE TABLE domain_certificates (
            hostname TEXT PRIMARY KEY REFERENCES domains(hostname) ON DELETE CASCADE,
            sealed TEXT NOT NULL,
            not_after BIGINT NOT NULL,
            issued_at BIGINT NOT NULL
        )",
            "CREATE TABLE acme_accounts (
            directory TEXT PRIMARY KEY,
            sealed TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE acme_challenges (
            token TEXT PRIMARY KEY,
            hostname TEXT NOT NULL REFERENCES domains(hostname) ON DELETE CASCADE,
            key_authorization TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        ],
    ),
];

/// A shop's own database: its catalog now; carts and orders join with their issue.
///
/// Products keep their `products.jsonl` line in `doc`; the columns beside it are what
/// queries filter, sort and update atomically (inventory lives in `variants`, the one place
/// stock is counted). The small catalog files (`store.json`, `categories.json`,
/// `collections.json`, `pages/*.md`, `theme.json`) are rows of `documents`, so a shop
/// exports to exactly the directory `aurelio build` reads.
pub const SHOP: &[Migration] = &[(
    1,
    &[
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "CREATE TABLE products (
            id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL UNIQUE,
            handle TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            title TEXT NOT NULL,
            doc TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
        "CREATE TABLE variants (
            id TEXT PRIMARY KEY,
            product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            position BIGINT NOT NULL,
            sku TEXT NOT NULL UNIQUE,
            price BIGINT NOT NULL,
            compare_at_price BIGINT,
            inventory BIGINT,
            inventory_policy TEXT NOT NULL
        )",
        "CREATE INDEX variants_product ON variants (product_id, position)",
        "CREATE TABLE documents (
            path TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
        "CREATE TABLE images (
            path TEXT PRIMARY KEY,
            hash TEXT NOT NULL,
            content_type TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            width BIGINT NOT NULL,
            height BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )",
    ],
)];
