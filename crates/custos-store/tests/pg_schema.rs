//! The PostgreSQL schema (`migrations/postgres/`, issue 9) against the
//! SQLite one it must equal: a fresh store opened through the public API
//! runs every SQLite migration, the three PostgreSQL files go into a
//! throwaway server, and then each store must have the same columns (type,
//! NOT NULL, default, order), primary keys and unique constraints, indexes
//! (columns, uniqueness, condition), keys the database assigns, and
//! triggers. A difference fails the test with a diff naming each side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use custos_store::{SqliteConfig, Store};
use custos_testpg::TestPostgres;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

/// Each store: its SQLite file (in the scratch folder), its PostgreSQL
/// schema and the file that creates it.
/// (SQLite file, PostgreSQL schema, the prefix of its migration files,
/// which are applied in name order).
const STORES: [(&str, &str, &str); 3] = [
    ("custos.db", "custos", "data_"),
    ("keys.db", "custos_keys", "keys_"),
    ("dormant.db", "custos_dormant", "dormant_"),
];

/// The tables given an explicit `rowid` column in PostgreSQL, because the
/// store's SQL uses SQLite's implicit rowid on them (the list at the top of
/// data_0001_initial.sql).
const ROWID_TABLES: &[(&str, &str)] = &[("custos", "records"), ("custos_keys", "data_keys")];

/// SQLite `INTEGER PRIMARY KEY`s the store always writes itself: plain keys
/// in PostgreSQL, where every other one is an identity.
const WRITTEN_KEYS: &[&str] = &["checkpoints.size"];

/// One store's schema, each part as lines that read well in a diff.
#[derive(Debug, Default)]
struct Schema {
    /// `table.column type [not null] [default x]`
    columns: BTreeSet<String>,
    /// table → its columns in order
    order: BTreeMap<String, Vec<String>>,
    /// `table: primary key (a, b)`, `table: unique (a)`
    keys: BTreeSet<String>,
    /// `table: name (a, <expr>) [unique] [where condition]`
    indexes: BTreeSet<String>,
    /// `table.column` of the keys the database assigns
    assigned: BTreeSet<String>,
    /// `table: name BEFORE UPDATE`
    triggers: BTreeSet<String>,
    /// PostgreSQL only: `table.rowid …` and `table: unique (rowid)`
    rowid: BTreeSet<String>,
}

/// A scratch folder for the SQLite files, removed at the end.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn postgres_schema_equals_sqlite_schema() {
    let folder = Folder(std::env::temp_dir().join(format!("custos-pg-schema-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&folder.0);
    std::fs::create_dir_all(&folder.0).unwrap();
    let store = Store::open_sqlite(&SqliteConfig {
        data_file: folder.0.join(STORES[0].0),
        key_file: folder.0.join(STORES[1].0),
        dormant_file: folder.0.join(STORES[2].0),
        readers: 1,
        max_batch: 1,
    })
    .expect("a fresh SQLite store opens and migrates");
    drop(store);

    let pg = TestPostgres::start("pg-schema", None).expect("PostgreSQL starts (scripts/test installs it)");
    let db = "custos_schema";
    pg.create_database(db).unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for (_, _, prefix) in STORES {
        let mut files: Vec<String> = std::fs::read_dir(&migrations)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(prefix) && f.ends_with(".sql"))
            .collect();
        files.sort();
        for file in files {
            pg.psql_file(db, &migrations.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }

    let mut problems = Vec::new();
    for (sqlite_file, schema, _) in STORES {
        let sqlite = sqlite_schema(&folder.0.join(sqlite_file));
        let postgres = postgres_schema(&pg, db, schema);
        compare(&format!("{sqlite_file} / {schema}"), &sqlite, &postgres, &mut problems);
        let rowid: BTreeSet<String> = ROWID_TABLES
            .iter()
            .filter(|(s, _)| *s == schema)
            .flat_map(|(_, t)| {
                [format!("{t}.rowid bigint generated always as identity"), format!("{t}: unique (rowid)")]
            })
            .collect();
        diff(&format!("{schema}: rowid columns"), "expected", &rowid, "PostgreSQL", &postgres.rowid, &mut problems);
    }
    assert!(problems.is_empty(), "the PostgreSQL schema differs from SQLite's:\n{}", problems.join("\n"));

    // The append-only trigger lets a row be linked once and unlinked once
    // (a destroyed member), and refuses any other change with SQLite's message.
    pg.psql(
        db,
        "INSERT INTO custos.cookie_consents (visitor_id, category, granted, source, gpc, policy_version, at)
         VALUES ('vis_1', 'analytics', 1, 'choice', 0, 'v1', 't0');
         UPDATE custos.cookie_consents SET subject_id = 's1', linked_at = 't1' WHERE visitor_id = 'vis_1'",
    )
    .expect("linking a visitor's row once is allowed");
    for change in ["granted = 0", "subject_id = 's2'", "subject_id = NULL", "linked_at = NULL"] {
        let refused = pg.psql(db, &format!("UPDATE custos.cookie_consents SET {change}")).unwrap_err();
        assert!(refused.contains("cookie consents are append-only"), "{change}: {refused}");
    }
    // A destroyed member's rows are unlinked: both columns back to NULL.
    pg.psql(db, "UPDATE custos.cookie_consents SET subject_id = NULL, linked_at = NULL")
        .expect("unlinking a destroyed member's rows is allowed");
}

/// Lines only on one side, under a heading; nothing when both agree.
fn diff(
    what: &str,
    left_name: &str,
    left: &BTreeSet<String>,
    right_name: &str,
    right: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let mut lines: Vec<String> = left.difference(right).map(|l| format!("  - {l}    ({left_name} only)")).collect();
    lines.extend(right.difference(left).map(|l| format!("  + {l}    ({right_name} only)")));
    if !lines.is_empty() {
        problems.push(format!("{what}:\n{}", lines.join("\n")));
    }
}

fn compare(store: &str, sqlite: &Schema, postgres: &Schema, problems: &mut Vec<String>) {
    let tables = |s: &Schema| s.order.keys().cloned().collect::<BTreeSet<_>>();
    let parts = [
        ("tables", tables(sqlite), tables(postgres)),
        ("columns", sqlite.columns.clone(), postgres.columns.clone()),
        ("primary keys and unique constraints", sqlite.keys.clone(), postgres.keys.clone()),
        ("indexes", sqlite.indexes.clone(), postgres.indexes.clone()),
        ("keys the database assigns", sqlite.assigned.clone(), postgres.assigned.clone()),
        ("triggers", sqlite.triggers.clone(), postgres.triggers.clone()),
    ];
    for (what, left, right) in parts {
        diff(&format!("{store}: {what}"), "SQLite", &left, "PostgreSQL", &right, problems);
    }
    // The order matters only once both have the same columns.
    for (table, columns) in &sqlite.order {
        if let Some(other) = postgres.order.get(table)
            && other != columns
            && other.iter().collect::<BTreeSet<_>>() == columns.iter().collect::<BTreeSet<_>>()
        {
            problems.push(format!(
                "{store}: column order of {table}:\n  SQLite     {}\n  PostgreSQL {}",
                columns.join(", "),
                other.join(", ")
            ));
        }
    }
}

fn column_line(table: &str, column: &str, ty: &str, not_null: bool, default: Option<&str>) -> String {
    let mut line = format!("{table}.{column} {ty}");
    if not_null {
        line.push_str(" not null");
    }
    if let Some(default) = default {
        line.push_str(&format!(" default {default}"));
    }
    line
}

/// An index condition, as both sides compare: without parentheses and
/// PostgreSQL's `::text` casts, in single spaces, lower case.
fn condition(text: &str) -> String {
    text.replace("::text", "").replace(['(', ')'], " ").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The words between a trigger's name and `ON` (`BEFORE UPDATE`).
fn trigger_line(table: &str, name: &str, sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let timing: Vec<String> = words
        .iter()
        .skip_while(|w| **w != name)
        .skip(1)
        .take_while(|w| !w.eq_ignore_ascii_case("on"))
        .map(|w| w.to_uppercase())
        .collect();
    format!("{table}: {name} {}", timing.join(" "))
}

fn sqlite_schema(path: &Path) -> Schema {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let strings = |sql: &str, params: &[&str]| -> Vec<Vec<Option<String>>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get::<_, Value>(i)? {
                        Value::Null => None,
                        Value::Integer(v) => Some(v.to_string()),
                        Value::Text(v) => Some(v),
                        other => Some(format!("{other:?}")),
                    })
                })
                .collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();

    let mut schema = Schema::default();
    let tables = strings(
        "SELECT name, \"strict\", wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table'
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        &[],
    );
    for row in &tables {
        let table = text(&row[0]);
        // A key column of a STRICT table is never NULL, as in PostgreSQL.
        assert_eq!(text(&row[1]), "1", "{table} is STRICT (the comparison relies on it)");
        let without_rowid = text(&row[2]) == "1";
        let columns = strings(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid",
            &[&table],
        );
        let mut key: Vec<(String, String, String)> = Vec::new();
        for c in &columns {
            let (name, declared, pk) = (text(&c[0]), text(&c[1]), text(&c[4]));
            let ty = match declared.as_str() {
                "TEXT" => "text".to_owned(),
                "INTEGER" => "bigint".to_owned(),
                "BLOB" => "bytea".to_owned(),
                "REAL" => "double precision".to_owned(),
                other => format!("unmapped {other}"),
            };
            let not_null = text(&c[2]) == "1" || pk != "0";
            schema.columns.insert(column_line(&table, &name, &ty, not_null, c[3].as_deref()));
            schema.order.entry(table.clone()).or_default().push(name.clone());
            if pk != "0" {
                key.push((pk, name, declared));
            }
        }
        key.sort();
        let key_columns: Vec<&str> = key.iter().map(|(_, name, _)| name.as_str()).collect();
        if !key.is_empty() {
            schema.keys.insert(format!("{table}: primary key ({})", key_columns.join(", ")));
        }
        if let [(_, name, declared)] = key.as_slice()
            && declared == "INTEGER"
            && !without_rowid
            && !WRITTEN_KEYS.contains(&format!("{table}.{name}").as_str())
        {
            schema.assigned.insert(format!("{table}.{name}"));
        }

        for index in strings("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)", &[&table]) {
            let (name, unique, origin) = (text(&index[0]), text(&index[1]) == "1", text(&index[2]));
            let columns: Vec<String> = strings("SELECT name FROM pragma_index_info(?1) ORDER BY seqno", &[&name])
                .iter()
                .map(|c| c[0].clone().unwrap_or_else(|| "<expr>".to_owned()))
                .collect();
            match origin.as_str() {
                "u" => {
                    schema.keys.insert(format!("{table}: unique ({})", columns.join(", ")));
                }
                "c" => {
                    let sql = strings("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1", &[&name]);
                    let sql = sql[0][0].clone().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
                    let at = sql.to_ascii_uppercase().find(" WHERE ");
                    let condition = at.map(|i| condition(&sql[i + " WHERE ".len()..]));
                    schema.indexes.insert(index_line(&table, &name, &columns, unique, condition.as_deref()));
                }
                _ => {}
            }
        }
    }
    for row in strings("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'", &[]) {
        schema.triggers.insert(trigger_line(&text(&row[0]), &text(&row[1]), &text(&row[2])));
    }
    schema
}

fn index_line(table: &str, name: &str, columns: &[String], unique: bool, condition: Option<&str>) -> String {
    let mut line = format!("{table}: {name} ({})", columns.join(", "));
    if unique {
        line.push_str(" unique");
    }
    if let Some(condition) = condition {
        line.push_str(&format!(" where {condition}"));
    }
    line
}

/// `psql`'s unaligned rows, split into `n` fields (the last may hold `|`).
fn rows(pg: &TestPostgres, database: &str, n: usize, sql: &str) -> Vec<Vec<String>> {
    let out = pg.psql(database, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    out.lines().map(|l| l.splitn(n, '|').map(str::to_owned).collect()).collect()
}

/// The columns of an index definition (`… USING btree (a, f(b, c)) WHERE …`):
/// names, or `<expr>` for an expression; and what follows the list.
fn index_columns(definition: &str) -> (Vec<String>, &str) {
    let start = definition.find(" USING ").and_then(|i| definition[i..].find('(').map(|j| i + j + 1)).unwrap();
    let (mut depth, mut columns, mut current) = (0, Vec::new(), String::new());
    for (i, ch) in definition[start..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' if depth == 0 => {
                columns.push(current);
                let named = |c: &String| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
                let columns = columns
                    .iter()
                    .map(|c| c.trim().to_owned())
                    .map(|c| if named(&c) { c } else { "<expr>".to_owned() });
                return (columns.collect(), &definition[start + i + 1..]);
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                columns.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    panic!("no column list in {definition}")
}

fn postgres_schema(pg: &TestPostgres, database: &str, schema_name: &str) -> Schema {
    let mut schema = Schema::default();
    let columns = rows(
        pg,
        database,
        7,
        &format!(
            "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.is_identity,
                    coalesce(c.identity_generation, ''), coalesce(c.column_default, '')
             FROM information_schema.columns c
             JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.table_schema = '{schema_name}' AND t.table_type = 'BASE TABLE'
             ORDER BY c.table_name, c.ordinal_position"
        ),
    );
    for c in &columns {
        let [table, column, ty, nullable, identity, generation, default] = c.as_slice() else {
            panic!("unexpected row {c:?}")
        };
        if column == "rowid" {
            let mut line = format!("{table}.rowid {ty}");
            if identity == "YES" {
                line.push_str(&format!(" generated {} as identity", generation.to_lowercase()));
            }
            schema.rowid.insert(line);
            continue;
        }
        // `''::text` is SQLite's `''`.
        let default = (!default.is_empty()).then(|| default.rsplit_once("::").map_or(default.as_str(), |(v, _)| v));
        schema.columns.insert(column_line(table, column, ty, nullable == "NO", default));
        schema.order.entry(table.clone()).or_default().push(column.clone());
        if identity == "YES" && generation == "BY DEFAULT" {
            schema.assigned.insert(format!("{table}.{column}"));
        }
    }

    let keys = rows(
        pg,
        database,
        3,
        &format!(
            "SELECT tc.table_name, lower(tc.constraint_type),
                    string_agg(k.column_name, ', ' ORDER BY k.ordinal_position)
             FROM information_schema.table_constraints tc
             JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name, table_name)
             WHERE tc.table_schema = '{schema_name}' AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')
             GROUP BY tc.table_name, tc.constraint_name, tc.constraint_type"
        ),
    );
    for k in &keys {
        let line = format!("{}: {} ({})", k[0], k[1], k[2]);
        if k[2] == "rowid" {
            schema.rowid.insert(line);
        } else {
            schema.keys.insert(line);
        }
    }

    // Explicit indexes: not those behind a primary key or unique constraint.
    let indexes = rows(
        pg,
        database,
        3,
        &format!(
            "SELECT x.tablename, x.indexname, x.indexdef FROM pg_indexes x
             WHERE x.schemaname = '{schema_name}' AND x.indexname NOT IN (
                 SELECT k.conname FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
                 WHERE n.nspname = '{schema_name}' AND k.contype IN ('p', 'u'))"
        ),
    );
    for x in &indexes {
        let (columns, rest) = index_columns(&x[2]);
        let condition = rest.trim().strip_prefix("WHERE ").map(condition);
        let unique = x[2].starts_with("CREATE UNIQUE INDEX");
        schema.indexes.insert(index_line(&x[0], &x[1], &columns, unique, condition.as_deref()));
    }

    let triggers = rows(
        pg,
        database,
        3,
        &format!(
            "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
             JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = '{schema_name}' AND NOT t.tgisinternal"
        ),
    );
    for t in &triggers {
        schema.triggers.insert(trigger_line(&t[0], &t[1], &t[2]));
    }
    schema
}
