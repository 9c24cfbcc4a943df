//! Blocks of `tb.chain.v1` (docs/formats.md, "Block"): one JSON object per line.

use crate::decode::{self, FieldError};
use crate::json::{self, Json, JsonError};
use crate::receipt::{decode_receipt, Decoded, ReceiptContext};

/// A block after decoding, its receipts already through the stateless checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Chain height; the replayer checks it is exactly the next one.
    pub height: u64,
    /// Block time; the replayer checks it never decreases.
    pub timestamp_ms: u64,
    /// Miner id, counted in `unique_miners`.
    pub miner: Box<str>,
    /// Proof-of-work difficulty (validated, not aggregated).
    pub difficulty: u64,
    /// Amount minted to the miner in this block.
    pub coinbase_micro: u64,
    /// Non-coinbase transactions in the block.
    pub tx_count: u64,
    /// Their summed amounts.
    pub tx_volume_micro: u64,
    /// Capacity offered per market, in [`Market::ALL`](crate::Market::ALL) order.
    pub capacity: [u64; 4],
    /// Receipts in block order.
    pub receipts: Vec<Decoded>,
}

/// Why a line is not a valid block. Reading stops here: blocks are never skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The line is not valid JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A block field breaks the format.
    #[error("{0}")]
    Field(FieldError),
    /// The line is empty.
    #[error("empty line")]
    EmptyLine,
    /// The last line of a file has no `\n` but a later file exists.
    #[error("unterminated last line (a later chain file exists)")]
    Unterminated,
    /// The line is longer than the reader accepts, with or without its `\n` so far.
    #[error("line longer than {max} bytes (the longest a chain line may be)")]
    TooLong {
        /// The limit, [`MAX_LINE_BYTES`](crate::reader::MAX_LINE_BYTES).
        max: usize,
    },
    /// `height` is not the next height.
    #[error("height: expected {expected}, found {found}")]
    Height {
        /// The height that should come next.
        expected: u64,
        /// The height found.
        found: u64,
    },
    /// `timestamp_ms` went backwards.
    #[error("timestamp_ms: {found} is before the previous block's {previous}")]
    Timestamp {
        /// The previous block's timestamp.
        previous: u64,
        /// This block's timestamp.
        found: u64,
    },
}

pub(crate) const FIELDS: [&str; 9] = [
    "height",
    "timestamp_ms",
    "miner",
    "difficulty",
    "coinbase_micro",
    "tx_count",
    "tx_volume_micro",
    "capacity",
    "receipts",
];

pub(crate) const CAPACITY: [&str; 4] = [
    "storage_bytes",
    "compute_units",
    "energy_milli_kwh",
    "ad_impressions",
];

/// Decodes one line (without its `\n` and trailing `\r`) and runs the stateless receipt checks.
pub fn decode_block(line: &[u8], ctx: &ReceiptContext<'_>) -> Result<Block, BlockError> {
    if line.is_empty() {
        return Err(BlockError::EmptyLine);
    }
    let tree = json::parse(line)?;
    let obj = decode::object(&tree, "block").map_err(BlockError::Field)?;
    let s: [_; 9] = decode::slots(obj, &FIELDS).map_err(BlockError::Field)?;
    let field = |i: usize| decode::required(s[i], FIELDS[i]).map_err(BlockError::Field);
    let uint = |i: usize| decode::uint(field(i)?, FIELDS[i]).map_err(BlockError::Field);
    let height = uint(0)?;
    let timestamp_ms = uint(1)?;
    let miner = decode::id(field(2)?, "miner").map_err(BlockError::Field)?;
    let difficulty = uint(3)?;
    let coinbase_micro = uint(4)?;
    let tx_count = uint(5)?;
    let tx_volume_micro = uint(6)?;
    let capacity =
        decode_capacity(field(7)?).map_err(|e| BlockError::Field(e.under("capacity")))?;
    let Json::Arr(receipts) = field(8)? else {
        return Err(BlockError::Field(FieldError::new(
            "receipts",
            "not an array",
        )));
    };
    let receipts = receipts
        .iter()
        .map(|r| decode_receipt(r, height, ctx))
        .collect();
    Ok(Block {
        height,
        timestamp_ms,
        miner: miner.into(),
        difficulty,
        coinbase_micro,
        tx_count,
        tx_volume_micro,
        capacity,
        receipts,
    })
}

fn decode_capacity(value: &Json) -> Result<[u64; 4], FieldError> {
    let obj = decode::object(value, "capacity")?;
    let s: [_; 4] = decode::slots(obj, &CAPACITY)?;
    let mut out = [0; 4];
    for (i, name) in CAPACITY.iter().enumerate() {
        out[i] = decode::uint(decode::required(s[i], name)?, name)?;
    }
    Ok(out)
}
