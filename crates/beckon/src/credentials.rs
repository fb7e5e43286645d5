//! The app's SDKAppID and secret key: from flags/environment, or dev credentials generated
//! once and kept in the data directory so that `beckon usersig` and `beckon client` can mint
//! signatures for a local server.

use crate::AppArgs;
use anyhow::{bail, Context, Result};
use beckon_usersig::UserSigKey;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// File in the data directory holding generated dev credentials.
pub(crate) const DEV_CREDENTIALS_FILE: &str = "dev-credentials.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Credentials {
    #[serde(rename = "SDKAppID")]
    pub(crate) sdk_app_id: u64,
    #[serde(rename = "secretKey")]
    pub(crate) secret_key: String,
    /// Dev credentials from the data directory rather than a configured key.
    #[serde(skip)]
    pub(crate) generated: bool,
}

impl Credentials {
    pub(crate) fn key(&self) -> UserSigKey {
        UserSigKey::new(self.sdk_app_id, self.secret_key.clone())
    }
}

/// Credentials from the arguments, else from the data directory's dev file; with `create`,
/// a missing dev file is generated (and announced once).
pub(crate) fn resolve(args: &AppArgs, create: bool) -> Result<Credentials> {
    match (args.sdkappid, &args.secret_key) {
        (Some(sdk_app_id), Some(secret_key)) if !secret_key.is_empty() => {
            Ok(Credentials {
                sdk_app_id,
                secret_key: secret_key.clone(),
                generated: false,
            })
        }
        (None, None) => dev_credentials(&args.data_dir, create),
        _ => bail!("--sdkappid and --secret-key (BECKON_SDKAPPID, BECKON_SECRET_KEY) go together: set both, or neither for dev credentials"),
    }
}

fn dev_credentials(data_dir: &Path, create: bool) -> Result<Credentials> {
    let path = data_dir.join(DEV_CREDENTIALS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut creds: Credentials = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not valid; delete it to generate new dev credentials",
                    path.display()
                )
            })?;
            creds.generated = true;
            if create {
                eprintln!("DEV MODE: using dev credentials from {}", path.display());
            }
            Ok(creds)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                bail!(
                    "no --sdkappid/--secret-key given and no dev credentials in {} (start `beckon serve` with that --data-dir first)",
                    data_dir.display()
                );
            }
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
            let mut rng = rand::thread_rng();
            let secret = (0..32).fold(String::with_capacity(64), |mut text, _| {
                let _ = write!(text, "{:02x}", rng.gen::<u8>());
                text
            });
            let creds = Credentials {
                sdk_app_id: rng.gen_range(1_400_000_000..1_500_000_000),
                secret_key: secret,
                generated: true,
            };
            let text =
                serde_json::to_string_pretty(&creds).context("cannot encode dev credentials")?;
            write_private(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "DEV MODE: generated dev credentials (shown once; kept in {}):",
                path.display()
            );
            eprintln!("  SDKAppID:  {}", creds.sdk_app_id);
            eprintln!("  secretKey: {}", creds.secret_key);
            eprintln!(
                "  Mint a UserSig with: beckon usersig <userID> --data-dir {}",
                data_dir.display()
            );
            eprintln!("  For production, set --sdkappid and --secret-key (BECKON_SDKAPPID, BECKON_SECRET_KEY).");
            Ok(creds)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a file only its owner can read: it holds the app's secret key.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
