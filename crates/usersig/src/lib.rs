//! Tencent TLSSigAPIv2 UserSig: HMAC-SHA256 login tickets, generation and verification.
//!
//! Compatible with Tencent's public `tls-sig-api-v2` libraries: a UserSig is
//! `base64url*(zlib(json))` where the JSON carries `TLS.sig = base64(HMAC-SHA256(secret,
//! "TLS.identifier:..\nTLS.sdkappid:..\nTLS.time:..\nTLS.expire:..\n[TLS.userbuf:..\n]"))`.

mod codec;
mod error;
#[cfg(test)]
mod tests;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use error::UserSigError;

type HmacSha256 = Hmac<Sha256>;

/// An application's SDKAppID and secret key; mints and checks UserSigs.
#[derive(Clone)]
pub struct UserSigKey {
    sdk_app_id: u64,
    secret: String,
}

// Hand-written so the secret never reaches logs.
impl std::fmt::Debug for UserSigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSigKey")
            .field("sdk_app_id", &self.sdk_app_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl UserSigKey {
    pub fn new(sdk_app_id: u64, secret_key: impl Into<String>) -> Self {
        Self {
            sdk_app_id,
            secret: secret_key.into(),
        }
    }

    pub fn sdk_app_id(&self) -> u64 {
        self.sdk_app_id
    }

    /// Mint a signature valid for `expire_seconds` from `now_unix` (seconds).
    pub fn generate(&self, user_id: &str, now_unix: u64, expire_seconds: u64) -> String {
        self.generate_inner(user_id, now_unix, expire_seconds, None)
    }

    /// Like [`Self::generate`] but binding `userbuf` (e.g. a TRTC PrivateMapKey buffer).
    pub fn generate_with_userbuf(
        &self,
        user_id: &str,
        now_unix: u64,
        expire_seconds: u64,
        userbuf: &[u8],
    ) -> String {
        self.generate_inner(user_id, now_unix, expire_seconds, Some(userbuf))
    }

    fn generate_inner(
        &self,
        user_id: &str,
        time: u64,
        expire: u64,
        userbuf: Option<&[u8]>,
    ) -> String {
        let userbuf_b64 = userbuf.map(codec::b64);
        let mac = self.mac(user_id, time, expire, userbuf_b64.as_deref());
        let sig = codec::b64(&mac.finalize().into_bytes());
        let doc = codec::write_doc(
            user_id,
            self.sdk_app_id,
            time,
            expire,
            userbuf_b64.as_deref(),
            &sig,
        );
        codec::encode_url(&codec::compress(doc.as_bytes()))
    }

    /// Verify `user_sig` for `user_id` at time `now_unix`. Ok(expiry unix time) on success.
    ///
    /// UserSigs carrying a `TLS.userbuf` are accepted too; the buffer is covered by the HMAC.
    pub fn verify(
        &self,
        user_id: &str,
        user_sig: &str,
        now_unix: u64,
    ) -> Result<u64, UserSigError> {
        let json = codec::decode_url_inflate(user_sig)?;
        let doc = codec::parse_doc(&json)?;
        if doc.sdk_app_id != self.sdk_app_id {
            return Err(UserSigError::AppIdMismatch);
        }
        if doc.identifier != user_id {
            return Err(UserSigError::IdentifierMismatch);
        }
        let claimed = codec::b64_decode(&doc.sig)
            .ok_or_else(|| codec::malformed("TLS.sig is not valid base64"))?;
        // Signature before expiry, so `Expired` only ever reports an authentic time.
        self.mac(
            &doc.identifier,
            doc.time,
            doc.expire,
            doc.userbuf.as_deref(),
        )
        .verify_slice(&claimed)
        .map_err(|_| UserSigError::BadSignature)?;
        let expires_at = doc
            .time
            .checked_add(doc.expire)
            .ok_or_else(|| codec::malformed("TLS.time + TLS.expire overflows"))?;
        if now_unix > expires_at {
            return Err(UserSigError::Expired {
                expired_at: expires_at,
            });
        }
        Ok(expires_at)
    }

    /// HMAC over Tencent's content string; `userbuf_b64` is used verbatim as the libraries do.
    fn mac(
        &self,
        identifier: &str,
        time: u64,
        expire: u64,
        userbuf_b64: Option<&str>,
    ) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.secret.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"TLS.identifier:");
        mac.update(identifier.as_bytes());
        mac.update(b"\nTLS.sdkappid:");
        mac.update(self.sdk_app_id.to_string().as_bytes());
        mac.update(b"\nTLS.time:");
        mac.update(time.to_string().as_bytes());
        mac.update(b"\nTLS.expire:");
        mac.update(expire.to_string().as_bytes());
        mac.update(b"\n");
        if let Some(buf) = userbuf_b64 {
            mac.update(b"TLS.userbuf:");
            mac.update(buf.as_bytes());
            mac.update(b"\n");
        }
        mac
    }
}
