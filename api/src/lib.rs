//! The Aurelio HTTP service: the headless commerce API, the storefront origin and the
//! live-reloading preview of `aurelio watch`, in three layers:
//!
//! * `platform`: the core — configuration, the shared `Platform`, databases, the registry,
//!   auth, errors, secrets, caches, limits, the guarded HTTP client and jobs. It imports no
//!   feature (`tests/layers.rs` checks it).
//! * features — `catalog`, `commerce`, `domains`, `feeds`, `builds`, `tenants`, `origin`
//!   and `preview`: each owns its routes, its state (`Platform::state`) and its job kinds.
//! * `server` and `openapi`: the one place features are assembled (routes, job kinds,
//!   cache hooks) and served.
//!
//! The core's modules are re-exported at the crate root (`aurelio_api::db`, …).

pub mod platform;

pub mod builds;
pub mod catalog;
pub mod commerce;
pub mod domains;
pub mod feeds;
pub mod origin;
pub mod preview;
pub mod tenants;

pub mod openapi;
pub mod server;

pub use platform::conn::shutdown_signal;
pub use platform::{
    auth, cache, conn, cors, crypto, db, egress, error, extract, jobs, limits, registry, schema,
    sqlite_writer,
};
pub use preview::serve;
pub use server::{Config, Platform, Running, start};
