//! The server secret and the keys derived from it (HKDF-SHA256).
//!
//! The secret comes from `--secret-file`, from the `DCR_SHIM_SECRET` environment variable, or is
//! generated once into `<data_dir>/server-secret` (mode 0600) so that a restart keeps every
//! cookie and sealed record valid. A previous secret may be given during rotation; verifiers
//! try the current key first, then the previous one.

use std::io::Write;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::crypto::private_file::{describe, read_private};

/// Length of the server secret in bytes.
pub(crate) const SECRET_LEN: usize = 32;

/// A 256-bit key; `Debug` never shows it.
pub(crate) struct Key(SecretBox<[u8; 32]>);

impl Key {
    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// Where a server secret comes from, when not from the file made in the data directory.
#[derive(Clone)]
pub enum SecretSource {
    /// `--secret-file`: 64 hex digits in a file (`private_file.rs` says who may read it).
    File(PathBuf),
    /// An environment variable (`DCR_SHIM_SECRET`, for a Kubernetes `secretKeyRef`) holding
    /// the 64 hex digits; `name` is the variable's.
    Environment {
        name: &'static str,
        value: std::sync::Arc<secrecy::SecretString>,
    },
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Environment { name, .. } => write!(f, "Environment({name}, [redacted])"),
        }
    }
}

/// The current server secret and, during rotation, the previous one.
#[derive(Debug)]
pub(crate) struct ServerKeys {
    current: Key,
    previous: Option<Key>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read, is a directory, or others may read it (`private_file.rs`).
    #[error("{0}")]
    Unreadable(String),
    #[error("cannot write a new server secret to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server secret {origin} must hold {SECRET_LEN} bytes as 64 hex digits")]
    Malformed { origin: String },
    #[error(
        "the data directory {data_dir} holds records but no server secret at {path}: a new secret would make every refresh token, code and sealed token unreadable and every consent cookie invalid. Restore the secret from your backup, or start with --new-secret to make a new one on purpose (every client then signs in again)"
    )]
    Missing { data_dir: PathBuf, path: PathBuf },
}

impl ServerKeys {
    /// Loads the secret from `secret` (a file or the environment), or from
    /// `<data_dir>/server-secret`, which is made on the first start. A data directory that
    /// already `has_records` gets a new secret only when `new_secret` says so: a lost secret
    /// must not be replaced silently.
    pub(crate) fn load(
        data_dir: &Path,
        secret: Option<&SecretSource>,
        previous: Option<&SecretSource>,
        has_records: bool,
        new_secret: bool,
    ) -> Result<Self, KeyError> {
        let current = match secret {
            Some(source) => read_source(source)?,
            None => {
                let path = data_dir.join("server-secret");
                if has_records && !new_secret && !path.exists() {
                    return Err(KeyError::Missing {
                        data_dir: data_dir.to_owned(),
                        path,
                    });
                }
                load_or_create(&path)?
            }
        };
        let previous = previous.map(read_source).transpose()?;
        Ok(Self { current, previous })
    }

    /// A key held in memory only, for work that seals and signs nothing that outlives it
    /// (the offline admin commands).
    pub(crate) fn throwaway() -> Self {
        Self::from_bytes(rand::random(), None)
    }

    /// Fixed keys (tests, `throwaway`).
    pub(crate) fn from_bytes(current: [u8; 32], previous: Option<[u8; 32]>) -> Self {
        Self {
            current: Key(SecretBox::new(Box::new(current))),
            previous: previous.map(|p| Key(SecretBox::new(Box::new(p)))),
        }
    }

    /// Keyed fingerprints of the current and the previous secret (16 hex digits each, derived
    /// like any other key, so they say nothing of the secret): what the store remembers to tell
    /// a replica started with another secret (`secret_fingerprint.rs`).
    pub(crate) fn fingerprints(&self) -> (String, Option<String>) {
        let of = |k: &Key| super::hex(&derive(k, FINGERPRINT).expose()[..8]);
        (of(&self.current), self.previous.as_ref().map(of))
    }

    /// A key for one purpose (e.g. `"consent-cookie v1"`), from the current secret.
    pub(crate) fn derive(&self, purpose: &str) -> Key {
        derive(&self.current, purpose)
    }

    /// The same purpose's key from the previous secret, while rotating.
    pub(crate) fn derive_previous(&self, purpose: &str) -> Option<Key> {
        self.previous.as_ref().map(|p| derive(p, purpose))
    }
}

/// The purpose of the secret's fingerprint.
const FINGERPRINT: &str = "server-secret fingerprint v1";

fn derive(secret: &Key, purpose: &str) -> Key {
    let hk = Hkdf::<Sha256>::new(Some(b"dcr-shim"), secret.expose());
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
    let _ = hk.expand(purpose.as_bytes(), &mut out);
    Key(SecretBox::new(Box::new(out)))
}

fn read_source(source: &SecretSource) -> Result<Key, KeyError> {
    match source {
        SecretSource::File(path) => read_secret(path),
        SecretSource::Environment { name, value } => {
            parse_secret(value.expose_secret(), || format!("in {name}"))
        }
    }
}

fn read_secret(path: &Path) -> Result<Key, KeyError> {
    let text = read_private(path)
        .map_err(|e| KeyError::Unreadable(describe("the server secret", path, &e)))?;
    parse_secret(&text, || path.display().to_string())
}

/// 64 hex digits (surrounding whitespace ignored) as a key; `origin` names where they came
/// from for the error.
fn parse_secret(text: &str, origin: impl Fn() -> String) -> Result<Key, KeyError> {
    let malformed = || KeyError::Malformed { origin: origin() };
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return Err(malformed());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| malformed())?;
    }
    Ok(Key(SecretBox::new(Box::new(out))))
}

fn load_or_create(path: &Path) -> Result<Key, KeyError> {
    if path.exists() {
        return read_secret(path);
    }
    let mut bytes = [0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let write_err = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    write_secret_file(path, hex.as_bytes()).map_err(write_err)?;
    read_secret(path)
}

/// Writes a file only its owner can read (mode 0600), through a temporary file and a rename, so
/// a crash never leaves half a secret behind.
pub(crate) fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    // A leftover temporary file from a crash could carry other permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerKeys::load(dir.path(), None, None, false, false).unwrap();
        let b = ServerKeys::load(dir.path(), None, None, true, false).unwrap();
        assert_eq!(a.derive("x").expose(), b.derive("x").expose());
        assert_ne!(a.derive("x").expose(), a.derive("y").expose());
        assert_eq!(format!("{:?}", a.derive("x")), "Key([redacted])");
    }

    #[test]
    fn a_lost_secret_is_not_replaced_silently() {
        let dir = tempfile::tempdir().unwrap();
        ServerKeys::load(dir.path(), None, None, false, false).unwrap();
        std::fs::remove_file(dir.path().join("server-secret")).unwrap();
        let err = ServerKeys::load(dir.path(), None, None, true, false)
            .err()
            .unwrap();
        assert!(matches!(err, KeyError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("--new-secret"));
        assert!(ServerKeys::load(dir.path(), None, None, true, true).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = SecretSource::File(path.clone());
        let err = ServerKeys::load(dir.path(), Some(&file), None, false, false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ServerKeys::load(dir.path(), Some(&file), None, false, false).is_ok());
    }

    #[test]
    fn a_secret_from_the_environment_is_the_same_secret_as_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_secret_file(&path, "ab".repeat(32).as_bytes()).unwrap();
        let from_file = ServerKeys::load(
            dir.path(),
            Some(&SecretSource::File(path)),
            None,
            false,
            false,
        )
        .unwrap();
        let env = |v: &str| SecretSource::Environment {
            name: "DCR_SHIM_SECRET",
            value: std::sync::Arc::new(v.into()),
        };
        let from_env =
            ServerKeys::load(dir.path(), Some(&env(&"ab".repeat(32))), None, false, false).unwrap();
        assert_eq!(
            from_file.derive("x").expose(),
            from_env.derive("x").expose()
        );
        let err = ServerKeys::load(dir.path(), Some(&env("short")), None, false, false)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "the server secret in DCR_SHIM_SECRET must hold 32 bytes as 64 hex digits"
        );
        assert!(!format!("{:?}", env("abc")).contains("abc"));
    }
}
