//! How numbered events are kept for resumption: a row per run of one user's consecutive
//! events applied in one indexer transaction, its events encoded together. Under load a user
//! gets several events per transaction (at least a message and an invitation event per
//! action), and one row insert stands for all of them.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Most events in one run: bounds a row's size (and what a resume decodes beyond what it needs).
pub(crate) const MAX_EVENTS_PER_RUN: usize = 256;

/// One kept event: borrowed from its journal record when the indexer writes it, owned when a
/// resume reads it back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeptEvent<'r> {
    pub(crate) seq: u64,
    pub(crate) origin: Option<Cow<'r, str>>,
    pub(crate) created_ms: u64,
    /// The rendered frame, or a message reference (see reader.rs).
    pub(crate) stored: Cow<'r, str>,
}

pub(crate) fn encode(events: &[KeptEvent<'_>]) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(events).map_err(|e| StoreError::Corrupt(format!("event run encode: {e}")))
}

pub(crate) fn decode(
    user: &str,
    first_seq: u64,
    bytes: &[u8],
) -> Result<Vec<KeptEvent<'static>>, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "the events of {user} from {first_seq} on cannot be read: {e}"
        ))
    })
}
