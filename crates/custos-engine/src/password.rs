//! Password hashing: Argon2id with the OWASP minimum parameters, stored as a
//! PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! Invariants: only Argon2id hashes are written or accepted; every hash has
//! its own random salt; a wrong password is `Ok(false)`, while a stored hash
//! that cannot be read is an error, so that a damaged record is noticed
//! rather than looking like a failed log-in. A stored hash may carry higher
//! costs than we write today (so that costs can be raised later), but not
//! beyond [`MAX_M_COST_KIB`], [`MAX_T_COST`] and [`MAX_P_COST`]: a planted
//! hash must not be able to exhaust the server's memory. Neither the
//! password nor the hash ever appears in an error.
//!
//! Both functions are slow on purpose and synchronous; the engine hashes on
//! its dedicated hashing threads (`hashing.rs`), each reusing one buffer
//! through [`hash_password_with_memory`].

#[cfg(test)]
mod tests;

use argon2::password_hash::phc::PasswordHash;
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Params, PasswordVerifier, RECOMMENDED_SALT_LEN, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Memory cost of new hashes, in KiB (19 MiB, the OWASP minimum for Argon2id).
pub const M_COST_KIB: u32 = 19_456;
/// Number of passes of new hashes.
pub const T_COST: u32 = 2;
/// Degree of parallelism of new hashes.
pub const P_COST: u32 = 1;

/// The highest memory cost a stored hash may ask for, in KiB (256 MiB).
pub const MAX_M_COST_KIB: u32 = 256 * 1024;
/// The highest number of passes a stored hash may ask for.
pub const MAX_T_COST: u32 = 16;
/// The highest parallelism a stored hash may ask for.
pub const MAX_P_COST: u32 = 8;

/// What can go wrong when hashing or verifying a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is not a PHC string this module accepts.
    #[error("malformed password hash: {0}")]
    MalformedHash(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Argon2 itself failed (for instance it could not allocate its memory).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes `password` with Argon2id (m=19456 KiB, t=2, p=1) and a random
/// 16-byte salt, and returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with_memory(password, &mut memory())
}

/// Argon2id's working memory for the parameters above (19 MiB).
pub fn memory() -> Vec<argon2::Block> {
    vec![argon2::Block::new(); M_COST_KIB as usize]
}

/// [`hash_password`] in memory the caller keeps: a hashing thread reuses one
/// buffer for every hash instead of asking the allocator for 19 MiB each
/// time (which, under load, fragmented the heap into gigabytes).
pub fn hash_password_with_memory(password: &str, memory: &mut [argon2::Block]) -> Result<String, PasswordError> {
    use base64::Engine as _;
    let mut salt = [0u8; RECOMMENDED_SALT_LEN];
    SystemRandom::new().fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        .map_err(|error| PasswordError::Hashing(error.to_string()))?;
    // The PHC string format, with its unpadded standard base64.
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!("$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}", b64.encode(salt), b64.encode(out)))
}

/// Checks `password` against a PHC string written by [`hash_password`] (or
/// any Argon2id hash within the cost limits). A wrong password is
/// `Ok(false)`; a hash that cannot be read is an error.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let malformed = |message: String| PasswordError::MalformedHash(message);
    let hash = PasswordHash::new(phc).map_err(|error| malformed(error.to_string()))?;
    if hash.algorithm != ARGON2ID_IDENT {
        return Err(malformed(format!("the algorithm is `{}`, expected `argon2id`", hash.algorithm)));
    }
    if hash.salt.is_none() {
        return Err(malformed("the salt is missing".to_owned()));
    }
    if hash.hash.is_none() {
        return Err(malformed("the hash value is missing".to_owned()));
    }
    let params = Params::try_from(&hash).map_err(|error| malformed(error.to_string()))?;
    if params.m_cost() > MAX_M_COST_KIB || params.t_cost() > MAX_T_COST || params.p_cost() > MAX_P_COST {
        return Err(malformed(format!(
            "the costs m={},t={},p={} exceed the limits m={MAX_M_COST_KIB},t={MAX_T_COST},p={MAX_P_COST}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        )));
    }
    // The context's own parameters are ignored: verification uses the ones
    // in the hash, checked above.
    match Argon2::default().verify_password(password.as_bytes(), &hash) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(
            error @ (argon2::password_hash::Error::OutOfMemory
            | argon2::password_hash::Error::Internal
            | argon2::password_hash::Error::Crypto),
        ) => Err(PasswordError::Hashing(error.to_string())),
        Err(error) => Err(malformed(error.to_string())),
    }
}
