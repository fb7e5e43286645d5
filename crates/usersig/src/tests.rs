//! Unit tests: round trips, every rejection path, and known answers from Tencent's algorithm.

use super::*;
use crate::codec::{compress, encode_url};

/// Tencent's public example key and app ID from their library READMEs.
const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const APP: u64 = 1_400_000_000;
const T0: u64 = 1_700_000_000;
const EXPIRE_180D: u64 = 86_400 * 180;

// Known answers computed with python3 exactly as tls-sig-api-v2-python's `__gen_sig`
// (json.dumps, zlib.compress default level, base64 with * - _), time fixed at T0.
const PY_SIG: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpYJkTE1NjRDiJZm5YFFzNPXFmekgG3zKHM1T9D3LzdODi-OKs8vCqpxcAvydnV2SSv2cy03cPcpDnA2SMgu0nUxslWoBHdYzUg__";
const PY_JSON: &str = r#"{"TLS.ver": "2.0", "TLS.identifier": "xiaojun", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1700000000, "TLS.sig": "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="}"#;

// Same, with userbuf = [0,0,7] + b"xiaojun" + bytes(range(20)).
const PY_USERBUF_SIG: &str = "eJxdjk0LgkAURf*KzLYQFc0paDGaqFmZKUTtFEcdNfMzhei-l2YFveU593LfHTgbm77hEiwowNEMmFIDIT7OahKQt*iIe42b7CMrP3HznPgvxfLMeKPDXU5K3BtBELgfr8lloOJfvqlw6TVBv4IQ0rCaRh6Xs16IJBRuFck6aTJKDLltd6sQWspBd75vkLCvMRGjHk1Wb6CamrDLtPm5kExBnATxmhf3UgGjmeLbyIBwCR5PzDVD0A__";
const PY_USERBUF_JSON: &str = r#"{"TLS.ver": "2.0", "TLS.identifier": "xiaojun", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1700000000, "TLS.userbuf": "AAAHeGlhb2p1bgABAgMEBQYHCAkKCwwNDg8QERIT", "TLS.sig": "0h0GWO1Iu8GlO8xnH9ZqBO57+fjJ47PBq8h6EdSAK88="}"#;

// Same, with a non-ASCII identifier that needs escaping, expire 3600.
const PY_UNICODE_ID: &str = "用户-é\t\"x\u{7f}";
const PY_UNICODE_SIG: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkYkrNTY0sYkrNjIzNdWNKDQxSLWNKYpQqQEzzNJie4pTsxIKCzBSgDkMTAyiAyqVWFGQWpQJljM3gYiWZuSARQ3M0tcWZ6SBLo6rCykJ9nUOT04sMstOdQsoMiyoTjUpTMi3TLPO0k-LTQgKNUo28TP0Dim2VagH78Tjz";
const PY_UNICODE_JSON: &str = r#"{"TLS.ver": "2.0", "TLS.identifier": "\u7528\u6237-\u00e9\t\"x\u007f", "TLS.sdkappid": 1400000000, "TLS.expire": 3600, "TLS.time": 1700000000, "TLS.sig": "ZzVvUMCUcgr0kgBTv1rya2udi9f9n+bofTQ2e2J5OPs="}"#;

fn key() -> UserSigKey {
    UserSigKey::new(APP, KEY)
}

fn decoded_json(user_sig: &str) -> String {
    let bytes = codec::decode_url_inflate(user_sig).expect("decodes");
    String::from_utf8(bytes).expect("utf-8")
}

/// Wrap an arbitrary document the way a UserSig is wrapped.
fn wrap(doc: &str) -> String {
    encode_url(&compress(doc.as_bytes()))
}

fn assert_malformed(user_sig: &str) {
    match key().verify("xiaojun", user_sig, T0) {
        Err(UserSigError::Malformed(_)) => {}
        other => panic!("expected Malformed for {user_sig:?}, got {other:?}"),
    }
}

/// A correctly signed document with arbitrary field text, for type/shape tests.
fn signed_doc_with(time: u64, expire: u64) -> String {
    let mac = key().mac("xiaojun", time, expire, None);
    let sig = codec::b64(&mac.finalize().into_bytes());
    format!(
        r#"{{"TLS.ver":"2.0","TLS.identifier":"xiaojun","TLS.sdkappid":{APP},"TLS.expire":{expire},"TLS.time":{time},"TLS.sig":"{sig}"}}"#
    )
}

#[test]
fn round_trip() {
    let k = key();
    let sig = k.generate("alice", T0, 3600);
    assert_eq!(k.verify("alice", &sig, T0), Ok(T0 + 3600));
    assert_eq!(k.verify("alice", &sig, T0 + 3600), Ok(T0 + 3600));
    assert_eq!(k.sdk_app_id(), APP);
}

#[test]
fn round_trip_with_userbuf() {
    let k = key();
    let sig = k.generate_with_userbuf("alice", T0, 60, b"\x00\x01room");
    assert_eq!(k.verify("alice", &sig, T0 + 1), Ok(T0 + 60));
}

#[test]
fn expiry() {
    let k = key();
    let sig = k.generate("alice", T0, 3600);
    let err = k.verify("alice", &sig, T0 + 3601).unwrap_err();
    assert_eq!(
        err,
        UserSigError::Expired {
            expired_at: T0 + 3600
        }
    );
    assert_eq!(err.code(), 70001);
    assert!(err.to_string().contains("expired"));
}

#[test]
fn wrong_secret() {
    let sig = UserSigKey::new(APP, "other-secret").generate("alice", T0, 3600);
    let err = key().verify("alice", &sig, T0).unwrap_err();
    assert_eq!(err, UserSigError::BadSignature);
    assert_eq!(err.code(), 70009);
}

#[test]
fn wrong_user() {
    let sig = key().generate("alice", T0, 3600);
    let err = key().verify("bob", &sig, T0).unwrap_err();
    assert_eq!(err, UserSigError::IdentifierMismatch);
    assert_eq!(err.code(), 70013);
}

#[test]
fn wrong_app_id() {
    let sig = UserSigKey::new(APP + 1, KEY).generate("alice", T0, 3600);
    let err = key().verify("alice", &sig, T0).unwrap_err();
    assert_eq!(err, UserSigError::AppIdMismatch);
    assert_eq!(err.code(), 70014);
}

#[test]
fn tampered_fields_fail_signature() {
    let k = key();
    let json = decoded_json(&k.generate("alice", T0, 3600));
    // Extending the lifetime without re-signing must be caught.
    let longer = json.replace("\"TLS.expire\": 3600", "\"TLS.expire\": 3601");
    assert_ne!(longer, json);
    assert_eq!(
        k.verify("alice", &wrap(&longer), T0),
        Err(UserSigError::BadSignature)
    );
    // Adding a userbuf the signer never saw must be caught.
    let with_buf = json.replace('}', ", \"TLS.userbuf\": \"AAAA\"}");
    assert_eq!(
        k.verify("alice", &wrap(&with_buf), T0),
        Err(UserSigError::BadSignature)
    );
}

#[test]
fn tampered_bytes_never_verify() {
    let k = key();
    let sig = k.generate("alice", T0, 3600);
    for i in 0..sig.len() {
        for replacement in ['A', 'z', '0', '*', '-', '_'] {
            let original = &sig[i..=i];
            if original.starts_with(replacement) {
                continue;
            }
            let mut tampered = sig.clone();
            tampered.replace_range(i..=i, &replacement.to_string());
            assert!(
                k.verify("alice", &tampered, T0).is_err(),
                "tampered at {i} with {replacement} verified"
            );
        }
    }
    // Truncations (dropping only padding is allowed) and extensions, too.
    for end in 0..sig.trim_end_matches('_').len() {
        assert!(k.verify("alice", &sig[..end], T0).is_err());
    }
    assert!(k.verify("alice", &format!("{sig}AAAA"), T0).is_err());
}

#[test]
fn garbage_is_malformed() {
    assert_malformed("");
    assert_malformed("!!!!");
    assert_malformed("not base64 at all");
    assert_malformed(&"A".repeat(4097));
    // Valid base64 ("hello world!"), not zlib.
    assert_malformed("aGVsbG8gd29ybGQh");
    // zlib, not JSON.
    assert_malformed(&wrap("this is not json"));
    assert_malformed(&wrap(""));
    // JSON, but not an object of the right shape.
    assert_malformed(&wrap("[1,2,3]"));
    assert_malformed(&wrap("\"a string\""));
    assert_malformed(&wrap("{}"));
    assert_malformed(&wrap(&"[".repeat(10_000)));
    let mut err_seen = Vec::new();
    for (from, to) in [
        (r#""TLS.ver":"2.0""#, r#""TLS.ver":"1.0""#),
        (r#""TLS.ver":"2.0""#, r#""TLS.ver":2.0"#),
        (r#""TLS.identifier":"xiaojun""#, r#""TLS.identifier":7"#),
        (
            &format!(r#""TLS.sdkappid":{APP}"#),
            &format!(r#""TLS.sdkappid":"{APP}""#),
        ),
        (
            &format!(r#""TLS.sdkappid":{APP}"#),
            &format!(r#""TLS.sdkappid":{APP}.0"#),
        ),
        (r#""TLS.time":1700000000"#, r#""TLS.time":"1700000000""#),
        (r#""TLS.time":1700000000"#, r#""TLS.time":-1"#),
        (r#""TLS.expire":3600"#, r#""TLS.expire":null"#),
        (r#""TLS.expire":3600,"#, ""),
        (r#""TLS.sig":""#, r#""TLS.sig":1,"x":""#),
        (r#""TLS.sig":""#, r#""TLS.sig":"%%%","x":""#),
        (
            r#""TLS.ver":"2.0","#,
            r#""TLS.ver":"2.0","TLS.userbuf":[],"#,
        ),
        // Duplicate keys are refused rather than resolved.
        (r#""TLS.ver":"2.0","#, r#""TLS.ver":"2.0","TLS.time":1,"#),
    ] {
        let doc = signed_doc_with(T0, 3600);
        let bad = doc.replace(from, to);
        assert_ne!(bad, doc, "pattern {from} not found");
        match key().verify("xiaojun", &wrap(&bad), T0) {
            Err(UserSigError::Malformed(msg)) => err_seen.push(msg),
            other => panic!("expected Malformed for {bad}, got {other:?}"),
        }
    }
    // Messages name the problem without echoing attacker-supplied text.
    assert!(err_seen.iter().all(|m| !m.contains("1700000000")));
    let err = UserSigError::Malformed("x".into());
    assert_eq!(err.code(), 70003);
}

#[test]
fn decompression_is_bounded() {
    // Pads the JSON with whitespace: small compressed, large inflated.
    let doc = signed_doc_with(T0, 3600);
    let just_fits = format!("{doc}{}", " ".repeat(codec::MAX_DOC_LEN - doc.len()));
    assert_eq!(
        key().verify("xiaojun", &wrap(&just_fits), T0),
        Ok(T0 + 3600)
    );
    let too_big = format!("{just_fits} ");
    assert_malformed(&wrap(&too_big));
    assert_malformed(&wrap(&" ".repeat(10 * 1024 * 1024)));
}

#[test]
fn expiry_overflow_is_malformed() {
    let doc = signed_doc_with(u64::MAX, 1);
    assert_malformed(&wrap(&doc));
}

#[test]
fn accepts_unpadded_and_uncompressed_variants() {
    let k = key();
    for user in ["a", "ab", "abc", "abcd", "alice", "xiaojun"] {
        let sig = k.generate(user, T0, 3600);
        let unpadded = sig.trim_end_matches('_');
        assert_eq!(k.verify(user, unpadded, T0), Ok(T0 + 3600));
    }
    // The Go library writes compact JSON with a trailing newline at zlib level 0.
    let doc = format!("{}\n", signed_doc_with(T0, 3600));
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
    std::io::Write::write_all(&mut enc, doc.as_bytes()).unwrap();
    let go_style = encode_url(&enc.finish().unwrap());
    assert_eq!(k.verify("xiaojun", &go_style, T0), Ok(T0 + 3600));
}

#[test]
fn known_answer_from_python() {
    let k = key();
    assert_eq!(k.verify("xiaojun", PY_SIG, T0), Ok(T0 + EXPIRE_180D));
    assert_eq!(decoded_json(PY_SIG), PY_JSON);
    // The JSON document we emit is identical to Python's, HMAC included.
    let ours = k.generate("xiaojun", T0, EXPIRE_180D);
    assert_eq!(decoded_json(&ours), PY_JSON);
}

#[test]
fn known_answer_with_userbuf() {
    let k = key();
    assert_eq!(
        k.verify("xiaojun", PY_USERBUF_SIG, T0),
        Ok(T0 + EXPIRE_180D)
    );
    let mut userbuf = vec![0u8, 0, 7];
    userbuf.extend_from_slice(b"xiaojun");
    userbuf.extend(0u8..20);
    let ours = k.generate_with_userbuf("xiaojun", T0, EXPIRE_180D, &userbuf);
    assert_eq!(decoded_json(&ours), PY_USERBUF_JSON);
    assert_eq!(decoded_json(PY_USERBUF_SIG), PY_USERBUF_JSON);
}

#[test]
fn known_answer_with_escaped_identifier() {
    let k = key();
    assert_eq!(k.verify(PY_UNICODE_ID, PY_UNICODE_SIG, T0), Ok(T0 + 3600));
    let ours = k.generate(PY_UNICODE_ID, T0, 3600);
    assert_eq!(decoded_json(&ours), PY_UNICODE_JSON);
    assert_eq!(decoded_json(PY_UNICODE_SIG), PY_UNICODE_JSON);
}

#[test]
fn debug_hides_secret() {
    let shown = format!("{:?}", key());
    assert!(!shown.contains(KEY));
    assert!(shown.contains("1400000000"));
}

#[test]
fn error_messages_say_what_to_do() {
    for err in [
        UserSigError::Malformed("the UserSig is empty".into()),
        UserSigError::IdentifierMismatch,
        UserSigError::AppIdMismatch,
        UserSigError::BadSignature,
        UserSigError::Expired { expired_at: 5 },
    ] {
        let msg = err.to_string();
        assert!(msg.starts_with("UserSig"), "{msg}");
        assert!(msg.contains("generate"), "{msg}");
    }
}
