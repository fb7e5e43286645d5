//! Wire encoding of a UserSig: Tencent's base64 variant, bounded zlib, and the JSON document.

use std::fmt::Write as _;
use std::io::Write as _;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use serde::Deserialize;
use serde_json::Value;

use crate::UserSigError;

/// Longest UserSig string accepted; real ones are a few hundred bytes.
pub(crate) const MAX_USER_SIG_LEN: usize = 4 * 1024;
/// Largest decompressed JSON document accepted (zip-bomb guard).
pub(crate) const MAX_DOC_LEN: usize = 16 * 1024;

/// Standard alphabet, padding optional: Tencent's libraries pad, hand-made clients may not.
const DECODE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn malformed(detail: &str) -> UserSigError {
    UserSigError::Malformed(detail.to_owned())
}

/// Standard base64 (padded), as every Tencent library emits it.
pub(crate) fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Standard base64, padded or not.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    DECODE.decode(text).ok()
}

/// zlib at level 6, the level Python's `zlib.compress` defaults to.
pub(crate) fn compress(doc: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(6));
    // Writing into a Vec cannot fail.
    enc.write_all(doc).expect("in-memory zlib write");
    enc.finish().expect("in-memory zlib finish")
}

/// Tencent's URL-safe variant: `+`→`*`, `/`→`-`, `=`→`_`.
pub(crate) fn encode_url(data: &[u8]) -> String {
    b64(data)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

/// Inverse of [`encode_url`], then zlib-inflate with a hard output bound.
pub(crate) fn decode_url_inflate(user_sig: &str) -> Result<Vec<u8>, UserSigError> {
    if user_sig.is_empty() {
        return Err(malformed("the UserSig is empty"));
    }
    if user_sig.len() > MAX_USER_SIG_LEN {
        return Err(malformed("the UserSig is longer than 4096 bytes"));
    }
    let std_b64: String = user_sig
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            other => other,
        })
        .collect();
    let compressed =
        b64_decode(&std_b64).ok_or_else(|| malformed("the UserSig is not valid base64"))?;
    inflate_bounded(&compressed)
}

fn inflate_bounded(compressed: &[u8]) -> Result<Vec<u8>, UserSigError> {
    // One extra byte of room tells "exactly at the limit" from "over it".
    let mut out = Vec::with_capacity(MAX_DOC_LEN + 1);
    let mut z = Decompress::new(true);
    let status = z
        .decompress_vec(compressed, &mut out, FlushDecompress::Finish)
        .map_err(|_| malformed("the decoded UserSig is not a valid zlib stream"))?;
    if out.len() > MAX_DOC_LEN {
        return Err(malformed("the decompressed UserSig is larger than 16 KiB"));
    }
    if status != Status::StreamEnd {
        return Err(malformed("the UserSig's zlib stream is truncated"));
    }
    // Refuse trailing bytes so each accepted string has a single meaning.
    if z.total_in() != compressed.len() as u64 {
        return Err(malformed("the UserSig has data after its zlib stream"));
    }
    Ok(out)
}

/// The signed fields of a UserSig document.
pub(crate) struct SigDoc {
    pub identifier: String,
    pub sdk_app_id: u64,
    pub time: u64,
    pub expire: u64,
    pub userbuf: Option<String>,
    pub sig: String,
}

/// Typed per field below so errors name the field without echoing attacker text;
/// derive still rejects duplicate keys, which other parsers might resolve differently.
#[derive(Deserialize)]
struct RawDoc {
    #[serde(rename = "TLS.ver")]
    ver: Option<Value>,
    #[serde(rename = "TLS.identifier")]
    identifier: Option<Value>,
    #[serde(rename = "TLS.sdkappid")]
    sdk_app_id: Option<Value>,
    #[serde(rename = "TLS.time")]
    time: Option<Value>,
    #[serde(rename = "TLS.expire")]
    expire: Option<Value>,
    #[serde(rename = "TLS.userbuf")]
    userbuf: Option<Value>,
    #[serde(rename = "TLS.sig")]
    sig: Option<Value>,
}

fn string_field(value: Option<Value>, name: &str) -> Result<String, UserSigError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None => Err(UserSigError::Malformed(format!("{name} is missing"))),
        Some(_) => Err(UserSigError::Malformed(format!("{name} is not a string"))),
    }
}

fn uint_field(value: Option<Value>, name: &str) -> Result<u64, UserSigError> {
    match value {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            UserSigError::Malformed(format!("{name} is not a non-negative integer"))
        }),
        None => Err(UserSigError::Malformed(format!("{name} is missing"))),
        Some(_) => Err(UserSigError::Malformed(format!("{name} is not a number"))),
    }
}

pub(crate) fn parse_doc(json: &[u8]) -> Result<SigDoc, UserSigError> {
    let raw: RawDoc = serde_json::from_slice(json).map_err(|e| {
        if e.is_data() {
            malformed("the UserSig's JSON is not an object with unique TLS.* keys")
        } else {
            UserSigError::Malformed(format!(
                "the decompressed UserSig is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        }
    })?;
    let ver = string_field(raw.ver, "TLS.ver")?;
    if ver != "2.0" {
        return Err(malformed(
            "TLS.ver is not \"2.0\" (only HMAC TLSSigAPIv2 UserSigs are supported)",
        ));
    }
    let userbuf = match raw.userbuf {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(malformed("TLS.userbuf is not a string")),
    };
    Ok(SigDoc {
        identifier: string_field(raw.identifier, "TLS.identifier")?,
        sdk_app_id: uint_field(raw.sdk_app_id, "TLS.sdkappid")?,
        time: uint_field(raw.time, "TLS.time")?,
        expire: uint_field(raw.expire, "TLS.expire")?,
        userbuf,
        sig: string_field(raw.sig, "TLS.sig")?,
    })
}

/// The document exactly as Python's `json.dumps` writes it (key order, `", "`/`": "`
/// separators, ASCII-only escapes), so output matches Tencent's Python library byte for byte.
pub(crate) fn write_doc(
    identifier: &str,
    sdk_app_id: u64,
    time: u64,
    expire: u64,
    userbuf: Option<&str>,
    sig: &str,
) -> String {
    let mut out = String::with_capacity(192 + identifier.len() * 6);
    out.push_str("{\"TLS.ver\": \"2.0\", \"TLS.identifier\": ");
    push_py_json_str(&mut out, identifier);
    let _ = write!(
        out,
        ", \"TLS.sdkappid\": {sdk_app_id}, \"TLS.expire\": {expire}, \"TLS.time\": {time}"
    );
    if let Some(buf) = userbuf {
        out.push_str(", \"TLS.userbuf\": ");
        push_py_json_str(&mut out, buf);
    }
    out.push_str(", \"TLS.sig\": ");
    push_py_json_str(&mut out, sig);
    out.push('}');
    out
}

/// A JSON string literal as Python's `json.dumps(ensure_ascii=True)` writes it.
fn push_py_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}
