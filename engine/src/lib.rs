//! The Aurelio engine: turns a shop's catalog directory and theme into a static storefront.
//!
//! Pure: no database and no network. `build` is the entry point; `catalog::load` reads a
//! catalog directory; `fixtures` writes synthetic ones.

pub mod catalog;
pub mod diagnostics;
pub mod money;
pub mod text;
