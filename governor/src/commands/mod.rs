//! One module per subcommand, plus what the offline ones share.

pub mod audit;
pub mod keygen;
pub mod offline;
pub mod replay;
pub mod simulate;
pub mod verify;
