//! How numbered events are kept for resumption: a row per run of one user's consecutive
//! events applied in one indexer transaction, its events encoded together. Under load a user
//! gets several events per transaction (at least a message and an invitation event per
//! action), and one row insert stands for all of them. A run is MessagePack compressed with
//! LZ4: the events of a run repeat field names, user and invitation IDs, and event runs were
//! most of the bytes the indexed tables write (about 580 of them per action), which compete
//! with the journal's syncs for the disk.

use crate::compressed;
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

/// The largest run decoded: far above 256 events of the largest frame, and what a damaged
/// length can make a resume allocate at most.
const MAX_RUN_BYTES: usize = 64 * 1024 * 1024;

/// A run as stored: compressed (see compressed.rs); runs written before schema 5 are plain
/// MessagePack and still read.
pub(crate) fn encode(events: &[KeptEvent<'_>]) -> Result<Vec<u8>, StoreError> {
    let plain = rmp_serde::to_vec(events)
        .map_err(|e| StoreError::Corrupt(format!("event run encode: {e}")))?;
    // A run too long to be read back compressed (none comes near) stays plain.
    if plain.len() > MAX_RUN_BYTES {
        return Ok(plain);
    }
    compressed::compress(&plain, 0, &mut Vec::new())
        .map_err(|e| StoreError::Corrupt(format!("event run compression: {e}")))
}

pub(crate) fn decode(
    user: &str,
    first_seq: u64,
    bytes: &[u8],
) -> Result<Vec<KeptEvent<'static>>, StoreError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!(
            "the events of {user} from {first_seq} on cannot be read: {e}"
        ))
    };
    match compressed::decompress(bytes, MAX_RUN_BYTES) {
        None => rmp_serde::from_slice(bytes).map_err(|e| unreadable(&e)),
        Some(plain) => {
            rmp_serde::from_slice(&plain.map_err(|e| unreadable(&e))?).map_err(|e| unreadable(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compressed::COMPRESSED;

    fn run(count: u64) -> Vec<KeptEvent<'static>> {
        (1..=count)
            .map(|seq| KeptEvent {
                seq,
                origin: (seq % 2 == 0).then_some(Cow::Borrowed("alice-phone")),
                created_ms: 1_796_000_000_000 + seq,
                stored: Cow::Owned(format!(
                    r#"{{"type":"event","name":"ts_invitee_accepted","seq":{seq},"data":{{"inviteID":"01a23c7e-{seq:04}","inviter":"alice","invitee":"bob","data":""}}}}"#
                )),
            })
            .collect()
    }

    fn seqs_and_frames(events: &[KeptEvent<'_>]) -> Vec<(u64, Option<String>, u64, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.seq,
                    e.origin.as_deref().map(str::to_owned),
                    e.created_ms,
                    e.stored.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_run_is_stored_compressed_and_reads_back_the_same() {
        let events = run(40);
        let stored = encode(&events).expect("encodes");
        let plain = rmp_serde::to_vec(&events).expect("encodes plain");
        assert_eq!(stored[0], COMPRESSED);
        assert!(
            stored.len() * 3 < plain.len(),
            "{} bytes stored for {} plain",
            stored.len(),
            plain.len()
        );
        let read = decode("bob", 1, &stored).expect("decodes");
        assert_eq!(seqs_and_frames(&read), seqs_and_frames(&events));
    }

    #[test]
    fn a_run_too_long_to_read_back_compressed_is_stored_plain_and_reads() {
        let stored = "x".repeat(MAX_RUN_BYTES / 2 + 1);
        let events: Vec<_> = (1..=2)
            .map(|seq| KeptEvent {
                seq,
                origin: None,
                created_ms: 0,
                stored: Cow::Borrowed(stored.as_str()),
            })
            .collect();
        let bytes = encode(&events).expect("encodes");
        assert_ne!(bytes[0], COMPRESSED);
        let read = decode("bob", 1, &bytes).expect("decodes");
        assert_eq!(seqs_and_frames(&read), seqs_and_frames(&events));
    }

    #[test]
    fn a_run_written_before_compression_still_reads() {
        let events = run(3);
        let plain = rmp_serde::to_vec(&events).expect("encodes plain");
        let read = decode("bob", 1, &plain).expect("decodes");
        assert_eq!(seqs_and_frames(&read), seqs_and_frames(&events));
    }

    #[test]
    fn a_damaged_run_is_an_error_naming_the_user_not_a_panic() {
        let stored = encode(&run(40)).expect("encodes");
        let mut cut = stored.clone();
        cut.truncate(stored.len() / 2);
        let mut too_long = stored.clone();
        too_long[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut shorter = stored.clone();
        let length = u32::from_le_bytes([stored[1], stored[2], stored[3], stored[4]]);
        shorter[1..5].copy_from_slice(&(length - 1).to_le_bytes());
        let mut scrambled = stored;
        for byte in scrambled.iter_mut().skip(5).step_by(7) {
            *byte ^= 0x5a;
        }
        for (what, bytes) in [
            ("cut short", cut),
            ("too long", too_long),
            ("length off by one", shorter),
            ("scrambled", scrambled),
            ("marker alone", vec![COMPRESSED]),
        ] {
            match decode("bob", 7, &bytes) {
                Err(StoreError::Corrupt(text)) => {
                    assert!(text.contains("bob from 7"), "{what}: {text}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
