use std::sync::OnceLock;

use super::*;

const PASSWORD: &str = "correct horse battery staple";

/// Hashing is slow on purpose (more so in a debug build): tests share one hash.
fn shared_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD).unwrap())
}

#[test]
fn hash_has_argon2id_owasp_parameters() {
    assert!(shared_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", shared_hash());
    assert!(!shared_hash().contains(PASSWORD));
}

#[test]
fn round_trip() {
    assert_eq!(verify_password(PASSWORD, shared_hash()), Ok(true));
}

#[test]
fn wrong_password_is_false() {
    assert_eq!(verify_password("correct horse battery stapler", shared_hash()), Ok(false));
    assert_eq!(verify_password("", shared_hash()), Ok(false));
}

#[test]
fn two_hashes_of_one_password_differ() {
    let other = hash_password(PASSWORD).unwrap();
    assert_ne!(other, shared_hash());
    assert_eq!(verify_password(PASSWORD, &other), Ok(true));
}

#[test]
fn reference_vector_verifies() {
    // From the reference implementation's tests (phc-winner-argon2), password
    // "password", salt "somesalt": hashes written elsewhere must verify.
    let reference = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    assert_eq!(verify_password("password", reference), Ok(true));
    assert_eq!(verify_password("sassword", reference), Ok(false));
}

#[test]
fn malformed_hashes_are_errors() {
    let hash = shared_hash();
    let (without_value, _) = hash.rsplit_once('$').unwrap();
    let cases = [
        "".to_owned(),
        "not a hash".to_owned(),
        "$argon2id".to_owned(),
        without_value.to_owned(),
        format!("{without_value}$"),
        format!("{without_value}$!!!not-base64!!!"),
        hash.replacen("$argon2id$", "$argon2i$", 1),
        hash.replacen("$argon2id$", "$scrypt$", 1),
        hash.replacen("m=19456", "m=1048576", 1),
        hash.replacen("t=2", "t=100", 1),
        hash.replacen("p=1", "p=64", 1),
        hash.replacen("m=19456", "m=zzz", 1),
        hash.replacen("p=1", "p=1,q=2", 1),
        hash.replacen("v=19", "v=7", 1),
        // The reference implementation's argon2i vector: valid, but not Argon2id.
        "$argon2i$v=19$m=65536,t=1,p=1$c29tZXNhbHQAAAAAAAAAAA$+r0d29hqEB0yasKr55ZgICsQGSkl0v0kgwhd+U3wyRo".to_owned(),
    ];
    for case in cases {
        let result = verify_password(PASSWORD, &case);
        assert!(matches!(result, Err(PasswordError::MalformedHash(_))), "{case:?}: {result:?}");
        let message = result.unwrap_err().to_string();
        assert!(message.starts_with("malformed password hash: "), "{message}");
        assert!(!message.contains(PASSWORD), "{message}");
    }
}

#[test]
fn cost_limit_message_names_the_limits() {
    let hash = shared_hash().replacen("m=19456", "m=1048576", 1);
    assert_eq!(
        verify_password(PASSWORD, &hash),
        Err(PasswordError::MalformedHash("the costs m=1048576,t=2,p=1 exceed the limits m=262144,t=16,p=8".to_owned()))
    );
}
