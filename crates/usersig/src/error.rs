//! Why a UserSig was rejected, with Tencent's numeric error codes.

/// Reasons [`crate::UserSigKey::verify`] refuses a UserSig.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserSigError {
    /// Not base64, not zlib, not JSON, too large, missing or wrong-typed fields, or wrong version.
    #[error(
        "UserSig is malformed: {0}; generate a fresh UserSig with a TLSSigAPIv2 library \
         and pass it unmodified"
    )]
    Malformed(String),
    /// `TLS.identifier` is not the user ID being authenticated.
    #[error(
        "UserSig was issued for a different user ID; generate the UserSig for the exact \
         user ID you log in with"
    )]
    IdentifierMismatch,
    /// `TLS.sdkappid` is not this server's SDKAppID.
    #[error(
        "UserSig was issued for a different SDKAppID; generate it with the SDKAppID this \
         server is configured with"
    )]
    AppIdMismatch,
    /// The HMAC does not match: wrong secret key or altered content.
    #[error(
        "UserSig signature does not match; check that the UserSig was generated with this \
         SDKAppID's current secret key and was not altered"
    )]
    BadSignature,
    /// Authentic but past `TLS.time + TLS.expire`.
    #[error(
        "UserSig expired at unix time {expired_at}; generate a new UserSig (and check the \
         issuing machine's clock)"
    )]
    Expired {
        /// Unix time (seconds) after which the UserSig stopped being valid.
        expired_at: u64,
    },
}

impl UserSigError {
    /// Tencent's error code for this failure, so clients can reuse their existing handling.
    pub fn code(&self) -> u32 {
        match self {
            Self::Expired { .. } => 70001,
            Self::Malformed(_) => 70003,
            Self::BadSignature => 70009,
            Self::IdentifierMismatch => 70013,
            Self::AppIdMismatch => 70014,
        }
    }
}
