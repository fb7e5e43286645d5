//! The compressed form the journal's frames and the kept event runs share: a marker byte, the
//! plain length (u32, little-endian) and an LZ4 block. What was written before either was
//! compressed is plain MessagePack (an array) or JSON (`[`), whose first byte is never the
//! marker.

/// First byte of a compressed payload.
pub(crate) const COMPRESSED: u8 = 0x01;
/// Bytes of the marker and the length before the block.
const HEAD_BYTES: usize = 5;
/// How much larger than its block an LZ4 block's content can be (a run of one byte); a longer
/// claimed length is damage, and decoding it would allocate that much.
const LZ4_MAX_EXPANSION: usize = 255;

/// `prefix` zero bytes (room for a caller's header), then `plain` compressed, in a vector of
/// exactly that size; `scratch` holds the compressor's output and is kept by callers that
/// compress often, so it is zero-filled only when it grows.
pub(crate) fn compress(
    plain: &[u8],
    prefix: usize,
    scratch: &mut Vec<u8>,
) -> Result<Vec<u8>, String> {
    let length = u32::try_from(plain.len())
        .map_err(|_| format!("{} bytes are too many to compress", plain.len()))?;
    let bound = lz4_flex::block::get_maximum_output_size(plain.len());
    if scratch.len() < bound {
        scratch.resize(bound, 0);
    }
    let written = lz4_flex::block::compress_into(plain, scratch).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(prefix + HEAD_BYTES + written);
    out.resize(prefix, 0);
    out.push(COMPRESSED);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&scratch[..written]);
    Ok(out)
}

/// The plain bytes of a compressed payload (`None` when `bytes` is not one), refusing a
/// claimed length above `max_len` or above what its block could give, and one that does not
/// match what the block holds.
pub(crate) fn decompress(bytes: &[u8], max_len: usize) -> Option<Result<Vec<u8>, String>> {
    let compressed = bytes.strip_prefix(&[COMPRESSED])?;
    Some((|| {
        let (length, block) =
            lz4_flex::block::uncompressed_size(compressed).map_err(|e| e.to_string())?;
        let limit = max_len.min(block.len().saturating_mul(LZ4_MAX_EXPANSION) + 16);
        if length > limit {
            return Err(format!(
                "{length} bytes claimed, more than {limit} could be"
            ));
        }
        let plain = lz4_flex::block::decompress(block, length).map_err(|e| e.to_string())?;
        if plain.len() != length {
            return Err(format!("{} bytes where {length} were written", plain.len()));
        }
        Ok(plain)
    })())
}
