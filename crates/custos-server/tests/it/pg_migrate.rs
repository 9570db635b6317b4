//! `custos migrate` as an operator runs it (issue 9, first part): the
//! PostgreSQL schemas created in a throwaway server, the key store in a
//! database of its own, a second run a no-op, three nodes migrating at once
//! applying each file once, a database newer than the binary refused, a
//! URL that is not PostgreSQL refused, and the SQLite data folder migrated
//! by opening it.

use std::process::Output;

use custos_testpg::TestPostgres;

use crate::crash::custos;
use crate::support::Scratch;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn migrate_prepares_postgres_once_and_refuses_what_it_cannot_handle() {
    let pg = TestPostgres::start("migrate", None).expect("PostgreSQL starts (scripts/test installs it)");
    pg.create_database("custos_data").unwrap();
    pg.create_database("custos_keys").unwrap();
    let scratch = Scratch::new("pg-migrate");
    let (data, keys) = (pg.url("custos_data"), pg.url("custos_keys"));

    let first = custos(&scratch.0, &["migrate", "--database", &data, "--key-database", &keys]).output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    // data: the initial schema, the privacy center's sign-in (data_0002)
    // and the register's indexes (data_0003).
    for (schema, version) in [("data", 3), ("dormant", 1), ("keys", 1)] {
        assert!(
            stderr(&first).contains(&format!("PostgreSQL {schema} schema: version 0 -> {version}")),
            "{}",
            stderr(&first)
        );
    }
    assert!(!stderr(&first).contains("postgres://"), "the URL is never printed");
    let tables = |db: &str, schema: &str| {
        pg.psql(db, &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"))
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert!(tables("custos_data", "custos") > 20);
    assert_eq!(tables("custos_data", "custos_dormant"), 2, "meta and dormant_items");
    assert_eq!(tables("custos_data", "custos_keys"), 0, "the key store went to its own database");
    assert_eq!(tables("custos_keys", "custos_keys"), 2, "meta and data_keys");
    assert_eq!(tables("custos_keys", "custos"), 0);

    // The URLs from the environment instead (a password stays out of argv).
    let again = custos(&scratch.0, &["migrate"])
        .env("CUSTOS_DATABASE_URL", &data)
        .env("CUSTOS_KEY_DATABASE_URL", &keys)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stderr(&again).matches("up to date (version 1)").count(), 2, "{}", stderr(&again));
    assert_eq!(stderr(&again).matches("up to date (version 3)").count(), 1, "{}", stderr(&again));

    // Three nodes migrating a fresh database at once: each file once.
    pg.create_database("custos_race").unwrap();
    let race = pg.url("custos_race");
    let nodes: Vec<_> =
        (0..3).map(|_| custos(&scratch.0, &["migrate", "--database", &race]).spawn().unwrap()).collect();
    for mut node in nodes {
        assert!(node.wait().unwrap().success());
    }
    let versions = pg.psql(
        "custos_race",
        "SELECT string_agg(store || '=' || version, ',' ORDER BY store) FROM custos_schema_versions",
    );
    assert_eq!(versions.unwrap(), "data=3,dormant=1,keys=1");

    // A database a newer custos migrated is left alone.
    pg.psql("custos_data", "UPDATE custos_schema_versions SET version = 9 WHERE store = 'data'").unwrap();
    let newer = custos(&scratch.0, &["migrate", "--database", &data]).output().unwrap();
    assert!(!newer.status.success());
    assert!(
        stderr(&newer).contains("newer version of custos (schema 9, this version knows up to 3)"),
        "{}",
        stderr(&newer)
    );

    let not_pg = custos(&scratch.0, &["migrate", "--database", "sqlite:///tmp/x.db"]).output().unwrap();
    assert!(!not_pg.status.success());
    assert!(stderr(&not_pg).contains("takes a postgres:// URL"), "{}", stderr(&not_pg));
    let unreachable =
        custos(&scratch.0, &["migrate", "--database", "postgres://custos@127.0.0.1:1/none"]).output().unwrap();
    assert!(!unreachable.status.success());
    assert!(stderr(&unreachable).contains("cannot migrate the PostgreSQL database"), "{}", stderr(&unreachable));

    // Without --database: the data folder, migrated as it opens.
    let sqlite = custos(&scratch.0, &["migrate"]).output().unwrap();
    assert!(sqlite.status.success(), "{}", stderr(&sqlite));
    assert!(scratch.0.join("data").join("custos.db").is_file());
}
