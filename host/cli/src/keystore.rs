//! Signing keys kept on disk between runs, one seed per file, as `wash` keeps them:
//! `$WEFT_HOME/keys/{name}_{role}.nk` (default `~/.weft/keys`), so that signing the same actor
//! name again reuses its account and module keys and the actor keeps its identity.
//!
//! Seed files are created with mode 0600 (owner read/write only) and never overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use wascap::{KeyPair, KeyRole};

/// Environment variable naming Weft's home directory.
pub const WEFT_HOME_ENV: &str = "WEFT_HOME";

/// What can go wrong reading or writing keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Neither `$WEFT_HOME` nor `$HOME` is set.
    #[error("cannot find the key directory: set WEFT_HOME (or HOME)")]
    NoHome,
    /// Reading or writing a key file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        /// "read", "create", ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A key file holds something that is not a seed of the expected role.
    #[error("key file {} is unusable: {source}; remove it to generate a new key", path.display())]
    BadSeed {
        /// The file.
        path: PathBuf,
        /// Why the seed was refused.
        #[source]
        source: wascap::ClaimsError,
    },
    /// The lattice issuer's file holds something that is not a cluster seed (`SC…`).
    #[error("key file {} is not a lattice issuer's seed (SC…); remove it to generate a new one", path.display())]
    NotClusterSeed {
        /// The file.
        path: PathBuf,
    },
    /// A role that has no single key type (`KeyRole::Other`) was asked for.
    #[error("cannot generate a key of this role")]
    UnsupportedRole,
}

/// A key read from, or just written to, the store.
#[derive(Debug)]
pub struct StoredKey {
    /// The key pair, with its seed.
    pub key: KeyPair,
    /// The file it lives in.
    pub path: PathBuf,
    /// Whether this call generated it.
    pub created: bool,
}

/// A directory of seed files.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The store at `$WEFT_HOME/keys`, or `~/.weft/keys` without `WEFT_HOME`.
    pub fn from_env() -> Result<Self, KeyStoreError> {
        let home = match std::env::var_os(WEFT_HOME_ENV) {
            Some(home) if !home.is_empty() => PathBuf::from(home),
            _ => {
                PathBuf::from(std::env::var_os("HOME").ok_or(KeyStoreError::NoHome)?).join(".weft")
            }
        };
        Ok(Self::at(home.join("keys")))
    }

    /// The store in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        KeyStore { dir: dir.into() }
    }

    /// The lattice issuer (a cluster key, `C…`) that signs this machine's lattice members,
    /// generated and saved on first use as `weft_lattice.nk`.
    pub fn lattice_issuer(&self) -> Result<nkeys::KeyPair, KeyStoreError> {
        let path = self.dir.join("weft_lattice.nk");
        if path.exists() {
            let seed = read_seed(&path)?;
            return nkeys::KeyPair::from_seed(seed.trim())
                .ok()
                .filter(|key| matches!(key.key_pair_type(), nkeys::KeyPairType::Cluster))
                .ok_or_else(|| KeyStoreError::NotClusterSeed { path: path.clone() });
        }
        let key = nkeys::KeyPair::new_cluster();
        let seed = key.seed().map_err(|_| KeyStoreError::UnsupportedRole)?;
        write_secret(&path, &seed)?;
        Ok(key)
    }

    /// The `role` key for `name`, generated and saved on first use.
    pub fn get_or_create(&self, name: &str, role: KeyRole) -> Result<StoredKey, KeyStoreError> {
        let path = self
            .dir
            .join(format!("{}_{}.nk", file_stem(name), role_word(role)));
        if path.exists() {
            let seed = read_seed(&path)?;
            let key =
                wascap::keys::seed_with_role(&seed, role, "stored seed").map_err(|source| {
                    KeyStoreError::BadSeed {
                        path: path.clone(),
                        source,
                    }
                })?;
            return Ok(StoredKey {
                key,
                path,
                created: false,
            });
        }
        let key = role.generate().ok_or(KeyStoreError::UnsupportedRole)?;
        let seed = key.seed().map_err(|_| KeyStoreError::UnsupportedRole)?;
        write_secret(&path, &seed)?;
        Ok(StoredKey {
            key,
            path,
            created: true,
        })
    }
}

/// The seed a key file holds: at most 1 KiB of it (a seed is 58 characters), so a key path
/// that names something else (`/dev/zero`) cannot fill memory.
pub fn read_seed(path: &Path) -> Result<String, KeyStoreError> {
    use std::io::Read;
    let mut seed = String::new();
    fs::File::open(path)
        .and_then(|file| file.take(1 << 10).read_to_string(&mut seed))
        .map_err(|source| KeyStoreError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(seed)
}

/// Writes `seed` to a new file readable by its owner only; refuses to overwrite.
pub fn write_secret(path: &Path, seed: &str) -> Result<(), KeyStoreError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| KeyStoreError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let io = |source| KeyStoreError::Io {
        action: "create",
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(seed.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    Ok(())
}

/// The lower-case role word used in file names and on the command line.
pub fn role_word(role: KeyRole) -> &'static str {
    match role {
        KeyRole::Account => "account",
        KeyRole::Module => "module",
        KeyRole::Service => "service",
        KeyRole::Operator => "operator",
        KeyRole::Other => "other",
    }
}

/// A name made safe for a file name: lower case, anything but `[a-z0-9-]` becomes `_`.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "unnamed".to_string()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_key_directory() {
        assert_eq!(file_stem("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_stem("My Actor"), "my_actor");
        assert_eq!(file_stem(""), "unnamed");
    }

    #[cfg(unix)]
    #[test]
    fn seeds_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::at(dir.path().join("keys"));
        let stored = store.get_or_create("a", KeyRole::Account).unwrap();
        let mode = fs::metadata(&stored.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            write_secret(&stored.path, "SAX").is_err(),
            "overwrote an existing seed"
        );
    }

    #[test]
    fn a_seed_of_the_wrong_role_is_reported_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::at(dir.path());
        let module_seed = KeyRole::Module.generate().unwrap().seed().unwrap();
        write_secret(&dir.path().join("x_account.nk"), &module_seed).unwrap();
        let err = store.get_or_create("x", KeyRole::Account).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("x_account.nk") && text.contains("must be an account key"),
            "{text}"
        );
    }
}
