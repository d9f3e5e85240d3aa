//! One module per subcommand.

pub mod bench;
pub mod build;
pub mod demo;
pub mod fixtures;
pub mod publish;
pub mod theme;
pub mod watch;
