//! Keys and encryption: the root key, the keys derived from it, data keys,
//! field encryption and blind indexes (design brief §4).
//!
//! The hierarchy is root key → HKDF-SHA256 subkeys (a key-encryption key and a
//! blind-index master) → random data keys, stored only in wrapped form. The
//! invariants this module keeps:
//!
//! - every ciphertext is bound by its associated data to its owner, field, key
//!   id and key version, so that a value moved to another row, field or key
//!   fails to open instead of decrypting to the wrong place;
//! - a wrapped data key is bound to its key id in the same way;
//! - key material lives in `Zeroizing` buffers (or in aws-lc-rs types that wipe
//!   themselves) and never reaches a `Debug` output or an error message, and
//!   neither does plaintext;
//! - hostile input (truncated, altered, empty) gives an error, never a panic.
//!
//! Every sealed value starts with a format byte so that a later format can be
//! told apart; only [`FORMAT_V1`] exists today.

#[cfg(test)]
mod tests;

use std::fmt;

use aws_lc_rs::aead::{self, AES_256_GCM, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{hkdf, hmac};
use zeroize::Zeroizing;

/// The first byte of every sealed value and wrapped key this version writes.
pub const FORMAT_V1: u8 = 0x01;

/// Length in bytes of the root key, the derived keys and data keys.
const KEY_LEN: usize = 32;
/// Length of the AES-GCM authentication tag.
const TAG_LEN: usize = 16;
/// Format byte and nonce, in front of the ciphertext.
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// The shortest well-formed sealed value: header and tag around an empty plaintext.
const MIN_SEALED_LEN: usize = HEADER_LEN + TAG_LEN;
/// A wrapped data key has a fixed length.
const WRAPPED_KEY_LEN: usize = HEADER_LEN + KEY_LEN + TAG_LEN;

/// First line of a root key file.
const ROOT_KEY_HEADER: &str = "custos-root-key v1";
/// Prefix of the first line, to tell a future version from a foreign file.
const ROOT_KEY_HEADER_PREFIX: &str = "custos-root-key ";

/// HKDF-Extract salt for the root key. The root key is uniformly random, so
/// any fixed salt will do; a non-empty one keeps the derivation usable under
/// FIPS rules, which refuse an empty salt.
const ROOT_SALT: &[u8] = b"custos/v1/root-key";
const INFO_KEY_WRAPPING: &[u8] = b"custos/v1/key-wrapping";
const INFO_BLIND_INDEX: &[u8] = b"custos/v1/blind-index";
const INFO_AUDIT_SIGNING: &[u8] = b"custos/v1/audit-signing";
const INFO_DORMANT_WRAPPING: &[u8] = b"custos/v1/dormant-key-wrapping";
/// The key-store scope of a member's dormant key, wrapped under the
/// dormant key-encryption key.
pub const DORMANT_SCOPE: &str = "dormant";
const INFO_BLIND_INDEX_SERVICE_PREFIX: &str = "custos/v1/blind-index/";
const WRAP_AAD_PREFIX: &str = "custos/v1/wrap|";
const FIELD_AAD_DOMAIN: &[u8] = b"custos/v1/field";

/// What can go wrong with keys and ciphertexts. No variant carries key bytes
/// or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The authentication tag did not match: the value was altered, or it is
    /// presented under another owner, field, key id, key version or key.
    #[error("ciphertext failed authentication: it was altered or belongs to another owner, field or key")]
    Tampered,
    /// The bytes do not have the shape of a sealed value or wrapped key.
    #[error("malformed ciphertext: {0}")]
    Malformed(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A root key file is not in the `custos-root-key v1` format.
    #[error("invalid root key file: {0}")]
    RootKeyFile(String),
}

/// The root key-encryption key. Everything else is derived from it or wrapped
/// under something derived from it; losing it loses all data.
pub struct RootKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl RootKey {
    /// Generates a new root key from the system random number generator.
    pub fn generate() -> Result<RootKey, CryptoError> {
        Ok(RootKey { bytes: random_key()? })
    }

    /// The key file text: the line `custos-root-key v1`, then the key in
    /// lower-case hex, each followed by a newline.
    pub fn to_file_text(&self) -> String {
        let mut text = String::with_capacity(ROOT_KEY_HEADER.len() + 2 * KEY_LEN + 2);
        text.push_str(ROOT_KEY_HEADER);
        text.push('\n');
        for byte in self.bytes.iter() {
            text.push(hex_digit(byte >> 4));
            text.push(hex_digit(byte & 0x0f));
        }
        text.push('\n');
        text
    }

    /// Reads the text written by [`RootKey::to_file_text`]. The final newline
    /// may be missing; anything else that differs is refused. Error messages
    /// say what is wrong and where, never what the key line contains.
    pub fn from_file_text(text: &str) -> Result<RootKey, CryptoError> {
        let refuse = |message: String| Err(CryptoError::RootKeyFile(message));
        if text.is_empty() {
            return refuse("the file is empty".to_owned());
        }
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines = body.split('\n');
        let header = lines.next().unwrap_or_default();
        if header != ROOT_KEY_HEADER {
            return match header.strip_prefix(ROOT_KEY_HEADER_PREFIX) {
                Some(version) if is_short_word(version) => {
                    refuse(format!("unsupported version `{version}`: this program reads `{ROOT_KEY_HEADER}`"))
                }
                _ => refuse(format!("the first line must be `{ROOT_KEY_HEADER}`")),
            };
        }
        let Some(key_line) = lines.next() else {
            return refuse("the key line (line 2) is missing".to_owned());
        };
        if lines.next().is_some() {
            return refuse("unexpected content after the key line (line 2)".to_owned());
        }
        let n_chars = key_line.chars().count();
        if n_chars != 2 * KEY_LEN {
            return refuse(format!(
                "the key line has {n_chars} characters; a key is {} hex digits ({KEY_LEN} bytes)",
                2 * KEY_LEN
            ));
        }
        // The line has the right number of characters; if it is not ASCII
        // the byte loop below meets a non-hex byte and says where.
        let digits = key_line.as_bytes();
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        for (i, byte) in bytes.iter_mut().enumerate() {
            let high = hex_value(digits, 2 * i)?;
            let low = hex_value(digits, 2 * i + 1)?;
            *byte = (high << 4) | low;
        }
        Ok(RootKey { bytes })
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(..)")
    }
}

/// The keys derived from a [`RootKey`]: the key-encryption key that wraps
/// data keys, and the master from which each service's blind-index key is
/// derived.
pub struct Keyring {
    key_wrapping: RandomizedNonceKey,
    /// Wraps the keys of the dormant store only: a separate key for
    /// separately stored data.
    dormant_wrapping: RandomizedNonceKey,
    blind_index_master: hkdf::Prk,
    audit_signing: aws_lc_rs::signature::Ed25519KeyPair,
}

impl Keyring {
    /// Derives the keyring from the root key with HKDF-SHA256.
    pub fn new(root: &RootKey) -> Keyring {
        let root_prk = hkdf::Salt::new(hkdf::HKDF_SHA256, ROOT_SALT).extract(root.bytes.as_ref());
        let key_wrapping = derive_key(&root_prk, INFO_KEY_WRAPPING);
        let dormant_wrapping = derive_key(&root_prk, INFO_DORMANT_WRAPPING);
        let blind_index_master = derive_key(&root_prk, INFO_BLIND_INDEX);
        let audit_seed = derive_key(&root_prk, INFO_AUDIT_SIGNING);
        Keyring {
            key_wrapping: aes_key(&key_wrapping),
            dormant_wrapping: aes_key(&dormant_wrapping),
            blind_index_master: hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, blind_index_master.as_ref()),
            audit_signing: aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(audit_seed.as_ref())
                .expect("a 32-byte seed is a valid Ed25519 seed"),
        }
    }

    /// Signs an audit checkpoint with the log's own Ed25519 key (derived
    /// from the root key, used for nothing else).
    pub fn sign_checkpoint(&self, text: &[u8]) -> Vec<u8> {
        self.audit_signing.sign(text).as_ref().to_vec()
    }

    /// The public half of the checkpoint key, for auditors to pin.
    pub fn checkpoint_public_key(&self) -> [u8; 32] {
        use aws_lc_rs::signature::KeyPair;
        let mut out = [0u8; 32];
        out.copy_from_slice(self.audit_signing.public_key().as_ref());
        out
    }

    /// Creates a random data key for `key_id` and returns it with its wrapped
    /// form, the only form that may be stored.
    pub fn new_data_key(&self, key_id: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let bytes = random_key()?;
        let wrapped = seal_with(&self.key_wrapping, &wrap_aad(key_id), bytes.as_ref())?;
        Ok((DataKey::from_bytes(bytes), wrapped))
    }

    /// A new dormant-store key for `key_id`, wrapped under the dormant
    /// key-encryption key.
    pub fn new_dormant_key(&self, key_id: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let bytes = random_key()?;
        let wrapped = seal_with(&self.dormant_wrapping, &wrap_aad(key_id), bytes.as_ref())?;
        Ok((DataKey::from_bytes(bytes), wrapped))
    }

    /// Unwraps a stored key of any scope: dormant keys under their own
    /// key-encryption key, every other under the data one.
    pub fn unwrap_scoped(&self, scope: &str, key_id: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if scope == DORMANT_SCOPE {
            return self.unwrap_with(&self.dormant_wrapping, key_id, wrapped);
        }
        self.unwrap_data_key(key_id, wrapped)
    }

    /// Unwraps a data key stored under `key_id`. A wrapped key presented under
    /// another key id, or wrapped under another root key, fails with
    /// [`CryptoError::Tampered`].
    pub fn unwrap_data_key(&self, key_id: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        self.unwrap_with(&self.key_wrapping, key_id, wrapped)
    }

    fn unwrap_with(&self, kek: &RandomizedNonceKey, key_id: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() != WRAPPED_KEY_LEN {
            return Err(CryptoError::Malformed(format!(
                "a wrapped key is {WRAPPED_KEY_LEN} bytes, this one is {}",
                wrapped.len()
            )));
        }
        let opened = open_with(kek, &wrap_aad(key_id), wrapped, "wrapped key")?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        // The length check above makes the plaintext exactly `KEY_LEN` bytes.
        bytes.copy_from_slice(&opened);
        Ok(DataKey::from_bytes(bytes))
    }

    /// The blind index of `normal_form_value` for `item` of `service`: an
    /// HMAC-SHA256 under the service's own key, so that equal values give
    /// equal indexes within one service and item, and nothing can be
    /// correlated across services or items. The value must already be in its
    /// normal form (lower-cased e-mail, E.164 phone); this function does not
    /// normalise.
    pub fn blind_index(&self, service: &str, item: &str, normal_form_value: &str) -> [u8; 32] {
        let info = format!("{INFO_BLIND_INDEX_SERVICE_PREFIX}{service}");
        let info_parts = [info.as_bytes()];
        let service_key: hmac::Key = self
            .blind_index_master
            .expand(&info_parts, hmac::HMAC_SHA256)
            .expect("32 bytes is a valid HKDF-SHA256 output length")
            .into();
        let mut context = hmac::Context::with_key(&service_key);
        context.update(&len_prefix(item.as_bytes()));
        context.update(item.as_bytes());
        context.update(&len_prefix(normal_form_value.as_bytes()));
        context.update(normal_form_value.as_bytes());
        let tag = context.sign();
        let mut index = [0u8; 32];
        index.copy_from_slice(tag.as_ref());
        index
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(..)")
    }
}

/// A data key: it encrypts the fields whose lifetime it shares. Destroying
/// its wrapped form destroys the data.
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl DataKey {
    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> DataKey {
        DataKey { bytes }
    }

    /// Encrypts `plaintext` with AES-256-GCM under a random nonce, bound to
    /// `aad`. Layout: `0x01 || nonce (12) || ciphertext || tag (16)`.
    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&aes_key(&self.bytes), &aad.encode(), plaintext)
    }

    /// Decrypts a value written by [`DataKey::seal`] with the same `aad`.
    /// Any difference in the bytes, the associated data or the key gives
    /// [`CryptoError::Tampered`]; bytes without the sealed layout give
    /// [`CryptoError::Malformed`].
    pub fn open(&self, aad: &Aad<'_>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&aes_key(&self.bytes), &aad.encode(), sealed, "sealed value")
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// What a sealed field value is bound to. Opening with any part different
/// fails, so a ciphertext cannot be moved to another owner, field or key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    /// The owner of the value, e.g. a member id.
    pub owner: &'a str,
    /// The field (item) the value belongs to.
    pub field: &'a str,
    /// The id of the data key that sealed the value.
    pub key_id: &'a str,
    /// The version of that key.
    pub key_version: u32,
}

impl Aad<'_> {
    /// An unambiguous encoding: a domain label, then each string with its
    /// length as a big-endian `u64` in front, then the key version.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            FIELD_AAD_DOMAIN.len() + 3 * 8 + self.owner.len() + self.field.len() + self.key_id.len() + 4,
        );
        out.extend_from_slice(FIELD_AAD_DOMAIN);
        for part in [self.owner, self.field, self.key_id] {
            out.extend_from_slice(&len_prefix(part.as_bytes()));
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out
    }
}

fn wrap_aad(key_id: &str) -> Vec<u8> {
    format!("{WRAP_AAD_PREFIX}{key_id}").into_bytes()
}

fn len_prefix(bytes: &[u8]) -> [u8; 8] {
    // `usize` is at most 64 bits on every platform Rust supports.
    (bytes.len() as u64).to_be_bytes()
}

fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    SystemRandom::new().fill(bytes.as_mut()).map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

fn derive_key(prk: &hkdf::Prk, info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    let info_parts = [info];
    prk.expand(&info_parts, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(out.as_mut()))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

fn aes_key(bytes: &Zeroizing<[u8; KEY_LEN]>) -> RandomizedNonceKey {
    RandomizedNonceKey::new(&AES_256_GCM, bytes.as_ref()).expect("32 bytes is a valid AES-256-GCM key")
}

fn seal_with(cipher: &RandomizedNonceKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // One allocation of the final size, so that no copy of the plaintext is
    // left behind by a reallocation; wiped if sealing fails.
    let mut out = Zeroizing::new(Vec::with_capacity(MIN_SEALED_LEN + plaintext.len()));
    out.push(FORMAT_V1);
    out.extend_from_slice(&[0u8; NONCE_LEN]);
    out.extend_from_slice(plaintext);
    // With a randomised-nonce key the only failure is the random generator
    // (or a plaintext past GCM's 64 GiB limit, which no field reaches).
    let (nonce, tag) = cipher
        .seal_in_place_separate_tag(aead::Aad::from(aad), &mut out[HEADER_LEN..])
        .map_err(|_| CryptoError::Random)?;
    out[1..HEADER_LEN].copy_from_slice(nonce.as_ref());
    out.extend_from_slice(tag.as_ref());
    Ok(std::mem::take(&mut *out))
}

fn open_with(
    cipher: &RandomizedNonceKey,
    aad: &[u8],
    sealed: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let Some((&format, rest)) = sealed.split_first() else {
        return Err(CryptoError::Malformed(format!("the {what} is empty")));
    };
    if format != FORMAT_V1 {
        return Err(CryptoError::Malformed(format!("the {what} has unknown format byte {format:#04x}")));
    }
    if sealed.len() < MIN_SEALED_LEN {
        return Err(CryptoError::Malformed(format!(
            "the {what} is {} bytes, shorter than the {MIN_SEALED_LEN}-byte minimum",
            sealed.len()
        )));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| CryptoError::Malformed(format!("the {what} has a bad nonce")))?;
    // Decrypt in a buffer that is wiped however this ends: AES-GCM may have
    // written plaintext into it before the tag check fails.
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let plaintext_len =
        cipher.open_in_place(nonce, aead::Aad::from(aad), &mut buffer).map_err(|_| CryptoError::Tampered)?.len();
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

/// The value of the hex digit at `position` of the key line, or an error
/// that names the position (1-based) but not the character.
fn hex_value(digits: &[u8], position: usize) -> Result<u8, CryptoError> {
    match digits.get(position) {
        Some(&digit @ b'0'..=b'9') => Ok(digit - b'0'),
        Some(&digit @ b'a'..=b'f') => Ok(digit - b'a' + 10),
        _ => Err(CryptoError::RootKeyFile(format!(
            "the key line has a character that is not a lower-case hex digit at column {}",
            position + 1
        ))),
    }
}

/// Whether a root key file's version word is short and plain enough to echo
/// in an error message (it is not the key).
fn is_short_word(version: &str) -> bool {
    !version.is_empty() && version.len() <= 8 && version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}
