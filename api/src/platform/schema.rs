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
    (
        3,
        &[
            // At most one queued job per shop and kind, so queuing is one upsert. (Two
            // PostgreSQL transactions could each find none and queue one; later pushes of
            // the duplicates then locked them in different orders and deadlocked.)
            "DELETE FROM jobs WHERE status = 'queued' AND id NOT IN \
            (SELECT MIN(id) FROM jobs WHERE status = 'queued' GROUP BY shop_id, kind)",
            "CREATE UNIQUE INDEX jobs_one_queued ON jobs (shop_id, kind) WHERE status = 'queued'",
        ],
    ),
    (
        4,
        &[
            // Certificate orders: failed ones in a row per hostname (the backoff doubles),
            // and a log of orders started (and whether they issued), so a shop's orders per
            // hour can be limited and a hostname's failed ones spaced out.
            "ALTER TABLE domains ADD COLUMN cert_failures BIGINT NOT NULL DEFAULT 0",
            "CREATE TABLE certificate_orders (
            hostname TEXT NOT NULL,
            shop_id TEXT NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
            started_at BIGINT NOT NULL,
            issued BIGINT NOT NULL DEFAULT 0
        )",
            "CREATE INDEX certificate_orders_shop ON certificate_orders (shop_id, started_at)",
            "CREATE INDEX domain_takeovers_shop ON domain_takeovers (shop_id)",
        ],
    ),
    (
        5,
        &[
            // One job system (`jobs`): platform jobs have no shop; a job carries a payload,
            // a unique key (jobs with one never run at once and coalesce while queued), a
            // lease its worker renews (a dead worker's job runs again elsewhere), progress
            // and a retry budget; `dead` is a job out of attempts. Schedules make the next
            // run of a recurring job when one finishes.
            "-- sqlite only\nALTER TABLE jobs RENAME TO jobs_v4",
            "-- sqlite only\nCREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            shop_id TEXT REFERENCES shops(id) ON DELETE CASCADE,
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
            error TEXT,
            payload TEXT NOT NULL DEFAULT '{}',
            unique_key TEXT,
            schedule TEXT,
            max_attempts BIGINT NOT NULL DEFAULT 1,
            lease_until BIGINT,
            progress TEXT
        )",
            "-- sqlite only\nINSERT INTO jobs (id, shop_id, kind, status, reason, run_after, \
             attempts, worker, created_at, started_at, finished_at, result, error) \
             SELECT id, shop_id, kind, status, reason, run_after, attempts, worker, created_at, \
             started_at, finished_at, result, error FROM jobs_v4",
            "-- sqlite only\nDROP TABLE jobs_v4",
            "-- sqlite only\nCREATE INDEX jobs_shop ON jobs (shop_id, created_at)",
            "-- postgres only\nDROP INDEX jobs_one_queued",
            "-- postgres only\nALTER TABLE jobs ALTER COLUMN shop_id DROP NOT NULL",
            "-- postgres only\nALTER TABLE jobs ADD COLUMN payload TEXT NOT NULL DEFAULT '{}'",
            "-- postgres only\nALTER TABLE jobs ADD COLUMN unique_key TEXT",
            "-- postgres only\nALTER TABLE jobs ADD COLUMN schedule TEXT",
            "-- postgres only\nALTER TABLE jobs ADD COLUMN max_attempts BIGINT NOT NULL DEFAULT 1",
            "-- postgres only\nALTER TABLE jobs ADD COLUMN lease_until BIGINT",
            "-- postgres only\nALTER TABLE jobs ADD COLUMN progress TEXT",
            "-- postgres only\nDROP INDEX jobs_queue",
            "UPDATE jobs SET unique_key = kind || ':' || shop_id",
            "UPDATE jobs SET status = 'failed', error = '{\"message\":\"stopped by an upgrade\"}' \
             WHERE status = 'running'",
            "CREATE INDEX jobs_due ON jobs (status, run_after)",
            "CREATE INDEX jobs_kind ON jobs (kind, created_at)",
            "CREATE INDEX jobs_key ON jobs (unique_key, created_at)",
            "CREATE UNIQUE INDEX jobs_one_queued ON jobs (unique_key) WHERE status = 'queued'",
            "CREATE TABLE schedules (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            shop_id TEXT REFERENCES shops(id) ON DELETE CASCADE,
            every_ms BIGINT,
            cron TEXT,
            payload TEXT NOT NULL DEFAULT '{}',
            next_run_at BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE INDEX schedules_shop ON schedules (shop_id)",
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
pub const SHOP: &[Migration] = &[
    (
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
    ),
    (
        2,
        &[
            // Commerce: carts, discounts, orders, payments, idempotency, outgoing webhooks.
            "ALTER TABLE variants ADD COLUMN weight_grams BIGINT",
            "ALTER TABLE variants ADD COLUMN label TEXT NOT NULL DEFAULT ''",
            "CREATE TABLE carts (
            token TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            email TEXT,
            country TEXT,
            region TEXT,
            shipping_rate TEXT,
            codes TEXT NOT NULL DEFAULT '[]',
            order_id TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE TABLE cart_lines (
            cart_token TEXT NOT NULL REFERENCES carts(token) ON DELETE CASCADE,
            variant_id TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            unit_price BIGINT NOT NULL,
            position BIGINT NOT NULL,
            PRIMARY KEY (cart_token, variant_id)
        )",
            "CREATE TABLE discounts (
            code TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            value BIGINT NOT NULL,
            min_subtotal BIGINT,
            starts_at BIGINT,
            ends_at BIGINT,
            usage_limit BIGINT,
            usage_count BIGINT NOT NULL DEFAULT 0,
            once_per_customer BIGINT NOT NULL DEFAULT 0,
            products TEXT NOT NULL DEFAULT '[]',
            collections TEXT NOT NULL DEFAULT '[]',
            combinable BIGINT NOT NULL DEFAULT 0,
            active BIGINT NOT NULL DEFAULT 1,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE discount_redemptions (
            code TEXT NOT NULL,
            customer TEXT NOT NULL,
            order_id TEXT NOT NULL,
            PRIMARY KEY (code, customer)
        )",
            "CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            number BIGINT NOT NULL UNIQUE,
            cart_token TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            status TEXT NOT NULL,
            currency TEXT NOT NULL,
            subtotal BIGINT NOT NULL,
            discount BIGINT NOT NULL,
            shipping BIGINT NOT NULL,
            tax BIGINT NOT NULL,
            total BIGINT NOT NULL,
            refunded BIGINT NOT NULL DEFAULT 0,
            provider TEXT NOT NULL,
            doc TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE TABLE order_events (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL,
            at BIGINT NOT NULL
        )",
            "CREATE TABLE payments (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            provider TEXT NOT NULL,
            status TEXT NOT NULL,
            amount BIGINT NOT NULL,
            external_id TEXT UNIQUE,
            client_secret TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            request_hash TEXT NOT NULL,
            status BIGINT,
            response TEXT,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE provider_events (
            id TEXT PRIMARY KEY,
            received_at BIGINT NOT NULL
        )",
            "CREATE TABLE payment_providers (
            name TEXT PRIMARY KEY,
            sealed TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
            "CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
            "CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            endpoint_id TEXT NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            delivered_at BIGINT,
            last_error TEXT,
            created_at BIGINT NOT NULL
        )",
            "CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at)",
        ],
    ),
    (
        3,
        &[
            // Every change of a cart counts up its version: an addition on PostgreSQL
            // writes only if nobody changed the cart since it read it, and a checkout
            // closes only the cart it priced.
            "ALTER TABLE carts ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
        ],
    ),
    (
        4,
        &[
            // Bounds on quantities, stock and money, below the API's own checks: a bug or
            // an overflow can never store a negative quantity, a wrapped total or stock
            // outside ± 10^12 (a checkout's subtraction would leave INTEGER in SQLite). Rows
            // that already broke them (only reachable through the overflow this closes)
            // are repaired first. PostgreSQL checks constraints; SQLite, which cannot add
            // them to a table, aborts the write in triggers.
            "DELETE FROM cart_lines WHERE quantity <= 0 OR quantity > 1000000",
            "UPDATE variants SET inventory = 0 \
             WHERE inventory < -1000000000000 OR inventory > 1000000000000",
            "-- postgres only
            ALTER TABLE cart_lines ADD CONSTRAINT cart_lines_quantity
                CHECK (quantity > 0 AND quantity <= 1000000 AND unit_price >= 0)",
            "-- postgres only
            ALTER TABLE variants ADD CONSTRAINT variants_bounds
                CHECK (price >= 0 AND (compare_at_price IS NULL OR compare_at_price >= 0)
                    AND (inventory IS NULL OR inventory BETWEEN -1000000000000 AND 1000000000000))",
            "-- postgres only
            ALTER TABLE orders ADD CONSTRAINT orders_amounts
                CHECK (subtotal >= 0 AND discount >= 0 AND shipping >= 0 AND tax >= 0
                    AND total >= 0 AND refunded >= 0 AND refunded <= total) NOT VALID",
            "-- postgres only
            ALTER TABLE payments ADD CONSTRAINT payments_amount CHECK (amount >= 0) NOT VALID",
            "-- sqlite only
            CREATE TRIGGER cart_lines_quantity_insert BEFORE INSERT ON cart_lines
            WHEN NEW.quantity <= 0 OR NEW.quantity > 1000000 OR NEW.unit_price < 0
            BEGIN SELECT RAISE(ABORT, 'cart_lines: quantity out of bounds'); END",
            "-- sqlite only
            CREATE TRIGGER cart_lines_quantity_update BEFORE UPDATE ON cart_lines
            WHEN NEW.quantity <= 0 OR NEW.quantity > 1000000 OR NEW.unit_price < 0
            BEGIN SELECT RAISE(ABORT, 'cart_lines: quantity out of bounds'); END",
            "-- sqlite only
            CREATE TRIGGER variants_bounds_insert BEFORE INSERT ON variants
            WHEN NEW.price < 0 OR NEW.compare_at_price < 0
                OR NEW.inventory < -1000000000000 OR NEW.inventory > 1000000000000
                OR typeof(NEW.inventory) NOT IN ('integer', 'null')
            BEGIN SELECT RAISE(ABORT, 'variants: price or inventory out of bounds'); END",
            "-- sqlite only
            CREATE TRIGGER variants_bounds_update BEFORE UPDATE ON variants
            WHEN NEW.price < 0 OR NEW.compare_at_price < 0
                OR NEW.inventory < -1000000000000 OR NEW.inventory > 1000000000000
                OR typeof(NEW.inventory) NOT IN ('integer', 'null')
            BEGIN SELECT RAISE(ABORT, 'variants: price or inventory out of bounds'); END",
            "-- sqlite only
            CREATE TRIGGER orders_amounts_insert BEFORE INSERT ON orders
            WHEN NEW.subtotal < 0 OR NEW.discount < 0 OR NEW.shipping < 0 OR NEW.tax < 0
                OR NEW.total < 0 OR NEW.refunded < 0 OR NEW.refunded > NEW.total
            BEGIN SELECT RAISE(ABORT, 'orders: amounts out of bounds'); END",
            "-- sqlite only
            CREATE TRIGGER orders_amounts_update BEFORE UPDATE ON orders
            WHEN NEW.subtotal < 0 OR NEW.discount < 0 OR NEW.shipping < 0 OR NEW.tax < 0
                OR NEW.total < 0 OR NEW.refunded < 0 OR NEW.refunded > NEW.total
            BEGIN SELECT RAISE(ABORT, 'orders: amounts out of bounds'); END",
        ],
    ),
    (
        5,
        &[
            // The hold and cleanup jobs (`commerce::holds`) find unpaid orders, idle carts
            // and old idempotency keys by time.
            "CREATE INDEX orders_status_created ON orders (status, created_at)",
            "CREATE INDEX carts_status_updated ON carts (status, updated_at)",
            "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
        ],
    ),
];
