use super::*;

const PLAINTEXT: &[u8] = b"ada.lovelace@example.org";

/// A fixed root key, so that derived values can be pinned.
const FIXED_ROOT_KEY_FILE: &str = "custos-root-key v1\n\
    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

fn keyring() -> Keyring {
    Keyring::new(&RootKey::generate().unwrap())
}

fn aad() -> Aad<'static> {
    Aad { owner: "member-1", field: "email", key_id: "profile/member-1", key_version: 1 }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_malformed_or_tampered(result: &Result<Zeroizing<Vec<u8>>, CryptoError>) -> bool {
    matches!(result, Err(CryptoError::Malformed(_) | CryptoError::Tampered))
}

#[test]
fn seal_open_round_trip() {
    let (key, _) = keyring().new_data_key("profile/member-1").unwrap();
    for plaintext in [PLAINTEXT, b"", &[0u8; 1000][..]] {
        let sealed = key.seal(&aad(), plaintext).unwrap();
        assert_eq!(sealed.len(), MIN_SEALED_LEN + plaintext.len());
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(key.open(&aad(), &sealed).unwrap().as_slice(), plaintext);
    }
}

#[test]
fn open_with_other_associated_data_is_tampered() {
    let (key, _) = keyring().new_data_key("profile/member-1").unwrap();
    let sealed = key.seal(&aad(), PLAINTEXT).unwrap();
    let others = [
        Aad { owner: "member-2", ..aad() },
        Aad { field: "phone", ..aad() },
        Aad { key_id: "profile/member-2", ..aad() },
        Aad { key_version: 2, ..aad() },
        // The same characters split differently between owner and field.
        Aad { owner: "member-1e", field: "mail", ..aad() },
    ];
    for other in others {
        assert_eq!(key.open(&other, &sealed), Err(CryptoError::Tampered), "{other:?}");
    }
}

#[test]
fn open_with_another_data_key_is_tampered() {
    let keyring = keyring();
    let (key, _) = keyring.new_data_key("profile/member-1").unwrap();
    let (other_key, _) = keyring.new_data_key("profile/member-1").unwrap();
    let sealed = key.seal(&aad(), PLAINTEXT).unwrap();
    assert_eq!(other_key.open(&aad(), &sealed), Err(CryptoError::Tampered));
}

#[test]
fn flipping_any_byte_fails() {
    let (key, _) = keyring().new_data_key("profile/member-1").unwrap();
    let sealed = key.seal(&aad(), PLAINTEXT).unwrap();
    for position in 0..sealed.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut altered = sealed.clone();
            altered[position] ^= mask;
            let result = key.open(&aad(), &altered);
            assert!(is_malformed_or_tampered(&result), "byte {position} ^ {mask:#04x}: {result:?}");
        }
    }
}

#[test]
fn truncated_and_empty_inputs_fail_without_panic() {
    let (key, _) = keyring().new_data_key("profile/member-1").unwrap();
    let sealed = key.seal(&aad(), PLAINTEXT).unwrap();
    for len in 0..sealed.len() {
        let result = key.open(&aad(), &sealed[..len]);
        assert!(is_malformed_or_tampered(&result), "length {len}: {result:?}");
    }
    assert_eq!(key.open(&aad(), &[]), Err(CryptoError::Malformed("the sealed value is empty".to_owned())));
    assert_eq!(
        key.open(&aad(), &sealed[..MIN_SEALED_LEN - 1]),
        Err(CryptoError::Malformed("the sealed value is 28 bytes, shorter than the 29-byte minimum".to_owned()))
    );
    assert_eq!(
        key.open(&aad(), &[0x02; 40]),
        Err(CryptoError::Malformed("the sealed value has unknown format byte 0x02".to_owned()))
    );
}

#[test]
fn sealed_bytes_do_not_contain_the_plaintext() {
    let (key, _) = keyring().new_data_key("profile/member-1").unwrap();
    let sealed = key.seal(&aad(), PLAINTEXT).unwrap();
    assert!(!sealed.windows(PLAINTEXT.len()).any(|window| window == PLAINTEXT));
    // Nor any long piece of it.
    assert!(!sealed.windows(4).any(|window| PLAINTEXT.windows(4).any(|piece| piece == window)));
}

#[test]
fn two_seals_of_one_plaintext_differ() {
    let (key, _) = keyring().new_data_key("profile/member-1").unwrap();
    let first = key.seal(&aad(), PLAINTEXT).unwrap();
    let second = key.seal(&aad(), PLAINTEXT).unwrap();
    assert_ne!(first, second);
    assert_ne!(first[1..HEADER_LEN], second[1..HEADER_LEN], "nonces differ");
}

#[test]
fn wrap_unwrap_round_trip() {
    let keyring = keyring();
    let (key, wrapped) = keyring.new_data_key("profile/member-1").unwrap();
    assert_eq!(wrapped.len(), WRAPPED_KEY_LEN);
    assert_eq!(wrapped[0], FORMAT_V1);
    let unwrapped = keyring.unwrap_data_key("profile/member-1", &wrapped).unwrap();
    assert_eq!(*unwrapped.bytes, *key.bytes);
    let sealed = key.seal(&aad(), PLAINTEXT).unwrap();
    assert_eq!(unwrapped.open(&aad(), &sealed).unwrap().as_slice(), PLAINTEXT);
}

#[test]
fn unwrap_under_another_key_id_is_tampered() {
    let keyring = keyring();
    let (_, wrapped) = keyring.new_data_key("profile/member-1").unwrap();
    assert_eq!(keyring.unwrap_data_key("profile/member-2", &wrapped).unwrap_err(), CryptoError::Tampered);
}

#[test]
fn another_root_key_cannot_unwrap() {
    let (_, wrapped) = keyring().new_data_key("profile/member-1").unwrap();
    assert_eq!(keyring().unwrap_data_key("profile/member-1", &wrapped).unwrap_err(), CryptoError::Tampered);
}

#[test]
fn damaged_wrapped_keys_fail_without_panic() {
    let keyring = keyring();
    let (_, wrapped) = keyring.new_data_key("profile/member-1").unwrap();
    for len in 0..wrapped.len() {
        assert_eq!(
            keyring.unwrap_data_key("profile/member-1", &wrapped[..len]).unwrap_err(),
            CryptoError::Malformed(format!("a wrapped key is 61 bytes, this one is {len}"))
        );
    }
    for position in 0..wrapped.len() {
        let mut altered = wrapped.clone();
        altered[position] ^= 0x01;
        let error = keyring.unwrap_data_key("profile/member-1", &altered).unwrap_err();
        assert!(matches!(error, CryptoError::Malformed(_) | CryptoError::Tampered), "byte {position}: {error:?}");
    }
}

#[test]
fn blind_index_is_deterministic_and_separates_services_items_and_values() {
    let keyring = keyring();
    let index = keyring.blind_index("bstage", "email", "ada@example.org");
    assert_eq!(index, keyring.blind_index("bstage", "email", "ada@example.org"));
    let others = [
        keyring.blind_index("other", "email", "ada@example.org"),
        keyring.blind_index("bstage", "phone", "ada@example.org"),
        keyring.blind_index("bstage", "email", "bob@example.org"),
        // The same characters split differently between item and value.
        keyring.blind_index("bstage", "emai", "lada@example.org"),
        // The same value under another root key.
        self::keyring().blind_index("bstage", "email", "ada@example.org"),
    ];
    for other in others {
        assert_ne!(index, other);
    }
}

#[test]
fn derivation_is_stable() {
    // Stored blind indexes and wrapped keys depend on the derivation: a change
    // to labels, salt or message layout must show up here, not in production.
    // The expected value was computed independently (Python hmac/hashlib:
    // HKDF-SHA256 extract with salt `custos/v1/root-key`, expand to the
    // blind-index master, expand to the service key, HMAC of the
    // length-prefixed item and value).
    let root = RootKey::from_file_text(FIXED_ROOT_KEY_FILE).unwrap();
    let keyring = Keyring::new(&root);
    assert_eq!(
        hex(&keyring.blind_index("bstage", "email", "ada@example.org")),
        "81e4ec17ccaef0b1c9424e46d213c4dc7deccba2e176b943927cb02a5551a258"
    );
    let again = Keyring::new(&RootKey::from_file_text(FIXED_ROOT_KEY_FILE).unwrap());
    let (_, wrapped) = keyring.new_data_key("k").unwrap();
    again.unwrap_data_key("k", &wrapped).unwrap();
}

#[test]
fn root_key_file_round_trip() {
    let root = RootKey::generate().unwrap();
    let text = root.to_file_text();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "custos-root-key v1");
    assert_eq!(lines[1], hex(root.bytes.as_ref()));
    assert_eq!(lines[2], "");
    let read = RootKey::from_file_text(&text).unwrap();
    assert_eq!(*read.bytes, *root.bytes);
    // The final newline may be missing.
    let read = RootKey::from_file_text(text.trim_end()).unwrap();
    assert_eq!(*read.bytes, *root.bytes);
    assert_eq!(RootKey::from_file_text(FIXED_ROOT_KEY_FILE).unwrap().to_file_text(), FIXED_ROOT_KEY_FILE);
}

#[test]
fn generated_root_keys_differ() {
    assert_ne!(*RootKey::generate().unwrap().bytes, *RootKey::generate().unwrap().bytes);
}

#[test]
fn malformed_root_key_files_are_refused() {
    let key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let cases = [
        ("", "the file is empty".to_owned()),
        ("\n", "the first line must be `custos-root-key v1`".to_owned()),
        (&*format!("{key}\n"), "the first line must be `custos-root-key v1`".to_owned()),
        (
            &*format!("custos-root-key v2\n{key}\n"),
            "unsupported version `v2`: this program reads `custos-root-key v1`".to_owned(),
        ),
        (&*format!("custos-root-key {key}\n"), "the first line must be `custos-root-key v1`".to_owned()),
        ("custos-root-key v1\n", "the key line (line 2) is missing".to_owned()),
        ("custos-root-key v1", "the key line (line 2) is missing".to_owned()),
        (&*format!("custos-root-key v1\n{key}\n\n"), "unexpected content after the key line (line 2)".to_owned()),
        (&*format!("custos-root-key v1\n{key}\nmore\n"), "unexpected content after the key line (line 2)".to_owned()),
        (
            &*format!("custos-root-key v1\n{}\n", &key[..62]),
            "the key line has 62 characters; a key is 64 hex digits (32 bytes)".to_owned(),
        ),
        (
            &*format!("custos-root-key v1\n{key}00\n"),
            "the key line has 66 characters; a key is 64 hex digits (32 bytes)".to_owned(),
        ),
        (
            &*format!("custos-root-key v1\n{key}\r\n"),
            "the key line has 65 characters; a key is 64 hex digits (32 bytes)".to_owned(),
        ),
        ("custos-root-key v1\n\n", "the key line has 0 characters; a key is 64 hex digits (32 bytes)".to_owned()),
        (
            &*format!("custos-root-key v1\n{}g\n", &key[..63]),
            "the key line has a character that is not a lower-case hex digit at column 64".to_owned(),
        ),
        (
            &*format!("custos-root-key v1\n{}\n", key.to_uppercase()),
            "the key line has a character that is not a lower-case hex digit at column 22".to_owned(),
        ),
        (
            &*format!("custos-root-key v1\n{}é\n", &key[..63]),
            "the key line has a character that is not a lower-case hex digit at column 64".to_owned(),
        ),
    ];
    for (text, message) in cases {
        let error = RootKey::from_file_text(text).unwrap_err();
        assert_eq!(error, CryptoError::RootKeyFile(message), "{text:?}");
        assert!(error.to_string().starts_with("invalid root key file: "));
        assert!(!error.to_string().contains(&key[..16]), "{text:?}");
    }
}

#[test]
fn debug_does_not_show_key_bytes() {
    let root = RootKey::generate().unwrap();
    let root_hex = hex(root.bytes.as_ref());
    assert_eq!(format!("{root:?}"), "RootKey(..)");
    assert!(!format!("{root:#?}").contains(&root_hex));

    let keyring = Keyring::new(&root);
    assert_eq!(format!("{keyring:?}"), "Keyring(..)");

    let (key, _) = keyring.new_data_key("profile/member-1").unwrap();
    let key_hex = hex(key.bytes.as_ref());
    assert_eq!(format!("{key:?}"), "DataKey(..)");
    assert!(!format!("{key:#?}").contains(&key_hex));
}

#[test]
fn error_messages_are_plain() {
    assert_eq!(
        CryptoError::Tampered.to_string(),
        "ciphertext failed authentication: it was altered or belongs to another owner, field or key"
    );
    assert_eq!(CryptoError::Random.to_string(), "the system random number generator failed");
}
