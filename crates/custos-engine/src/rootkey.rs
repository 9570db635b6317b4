//! The root key file: created once with mode 0600, refused when anyone but
//! its owner may read it, and checked against the data folder at every start
//! so that a wrong key is noticed before any data is written with it.

use std::io::Write;
use std::path::Path;

use custos_store::Store;

use crate::crypto::{Keyring, RootKey};
use crate::{EngineError, Result};

/// The blind index of a fixed value under the root key, kept in the data
/// file: the same root key always gives the same check value.
const CHECK_META_KEY: &str = "root_key_check";

/// Loads the root key, or creates it when the file is absent and the data
/// folder is new. A missing key for an existing data folder is an error:
/// creating a new one would make every stored value unreadable.
pub(crate) fn load_or_create(path: &Path, data_exists: bool) -> Result<(RootKey, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_permissions(path)?;
            let key =
                RootKey::from_file_text(&text).map_err(|e| EngineError::Config(format!("{}: {e}", path.display())))?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if data_exists {
                return Err(EngineError::Config(format!(
                    "the root key file {} is missing, but the data folder already holds data: restore the key from its backup (a new key could not read the data)",
                    path.display()
                )));
            }
            let key = RootKey::generate()?;
            write_new(path, &key.to_file_text())?;
            Ok((key, true))
        }
        Err(e) => Err(EngineError::Config(format!("cannot read the root key file {}: {e}", path.display()))),
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| EngineError::Config(format!("cannot read {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(EngineError::Config(format!(
            "the root key file {} may be read by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

fn write_new(path: &Path, text: &str) -> Result<()> {
    let fail =
        |e: std::io::Error| EngineError::Config(format!("cannot create the root key file {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(())
}

/// Records the root key's check value in a new data folder, and compares it
/// in an existing one.
pub(crate) async fn check_matches(store: &Store, keyring: &Keyring) -> Result<()> {
    let check = hex(&keyring.blind_index("custos", "root-key-check", "custos/v1"));
    let matches = store
        .write(move |tx| match tx.meta(CHECK_META_KEY)? {
            Some(stored) => Ok(stored == check),
            None => {
                tx.set_meta(CHECK_META_KEY, &check)?;
                Ok(true)
            }
        })
        .await?;
    if matches { Ok(()) } else { Err(EngineError::Config("the root key does not belong to this data folder".into())) }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
