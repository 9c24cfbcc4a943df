//! One module per subcommand, plus what the offline ones share.

pub mod audit;
pub mod client;
pub mod compare;
pub mod demo;
pub mod keygen;
pub mod offline;
pub mod replay;
pub mod report;
pub mod run;
pub mod shell;
pub mod sign;
pub mod simulate;
pub mod verify;
