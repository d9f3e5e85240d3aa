//! The Aurelio engine: turns a shop's catalog directory and theme into a static storefront.
//!
//! Pure: no database and no network. `build` is the entry point; `catalog::load` reads a
//! catalog directory; `fixtures` writes synthetic ones.

pub mod build;
pub mod catalog;
pub mod diagnostics;
pub mod feeds;
pub mod fixtures;
pub mod images;
pub mod money;
pub mod output;
pub mod progress;
pub mod publish;
pub mod render;
pub mod sitemap;
pub mod text;
pub mod theme;

pub use build::{
    BuildError, BuildOptions, BuildReport, FeedsReport, Session, build, build_catalog, build_in,
};
pub use catalog::{Catalog, CatalogError};
pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use progress::{Progress, Silent};
