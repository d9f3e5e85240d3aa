//! One module per subcommand.

pub mod bench;
pub mod build;
pub mod demo;
pub mod domain;
pub mod feed;
pub mod fixtures;
pub mod jobs;
pub mod listen;
pub mod publish;
pub mod serve;
pub mod theme;
pub mod watch;
