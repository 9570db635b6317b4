//! Looking at what the store holds, below the engine, on either backend:
//! the tests' way to check rows the API does not show (audit entries,
//! ciphertext, what was deleted). SQL is written once with `?N`
//! placeholders in the SQL both dialects accept; on PostgreSQL each
//! statement runs on a fresh connection from a thread of its own (the
//! synchronous client may not run inside the test's runtime).

use std::path::PathBuf;

use crate::support::{Scratch, TestApp, database_for};

/// Which of the three stores a statement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    Data,
    Keys,
    Dormant,
}

/// One value of a row, whatever the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

/// A Rust value a column is read into.
pub(crate) trait FromVal: Sized {
    fn from_val(v: &Val) -> Option<Self>;
}

impl FromVal for i64 {
    fn from_val(v: &Val) -> Option<i64> {
        match v {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromVal for u64 {
    fn from_val(v: &Val) -> Option<u64> {
        i64::from_val(v).and_then(|i| u64::try_from(i).ok())
    }
}

impl FromVal for bool {
    fn from_val(v: &Val) -> Option<bool> {
        i64::from_val(v).map(|i| i != 0)
    }
}

impl FromVal for String {
    fn from_val(v: &Val) -> Option<String> {
        match v {
            Val::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl FromVal for Vec<u8> {
    fn from_val(v: &Val) -> Option<Vec<u8>> {
        match v {
            Val::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val) -> Option<Option<T>> {
        match v {
            Val::Null => Some(None),
            other => T::from_val(other).map(Some),
        }
    }
}

/// A row's column `i` as `T`, with a readable failure.
pub(crate) fn col<T: FromVal>(row: &[Val], i: usize) -> T {
    T::from_val(&row[i]).unwrap_or_else(|| panic!("column {i} is {:?}", row[i]))
}

#[derive(Debug, Clone)]
enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

/// The stores of one test instance.
#[derive(Debug, Clone)]
pub(crate) struct Peek(Target);

impl Peek {
    pub(crate) fn of(app: &TestApp) -> Peek {
        Peek::at(&app.dir)
    }

    /// The instance kept in `dir` (its data folder, or its database).
    pub(crate) fn at(dir: &Scratch) -> Peek {
        match database_for(dir) {
            Some(url) => Peek(Target::Postgres(url)),
            None => Peek(Target::Sqlite(dir.0.join("data"))),
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.0, Target::Postgres(_))
    }

    /// Every row `sql` returns.
    pub(crate) fn rows(&self, db: Db, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
        match &self.0 {
            Target::Sqlite(dir) => sqlite_rows(dir, db, sql, params),
            Target::Postgres(url) => {
                let (url, sql, params) = (url.clone(), sql.to_owned(), params.to_vec());
                std::thread::spawn(move || pg_rows(&url, db, &sql, &params)).join().unwrap()
            }
        }
    }

    /// The first column of every row.
    pub(crate) fn column<T: FromVal>(&self, db: Db, sql: &str, params: &[Val]) -> Vec<T> {
        self.rows(db, sql, params).iter().map(|r| col(r, 0)).collect()
    }

    /// The first column of the one row `sql` must return.
    pub(crate) fn one<T: FromVal>(&self, db: Db, sql: &str, params: &[Val]) -> T {
        let rows = self.rows(db, sql, params);
        assert!(!rows.is_empty(), "no row for {sql}");
        col(&rows[0], 0)
    }

    /// Runs a statement that changes rows (tests that break things on
    /// purpose); the number of rows changed.
    pub(crate) fn execute(&self, db: Db, sql: &str, params: &[Val]) -> u64 {
        match &self.0 {
            Target::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.join(file_of(db))).unwrap();
                conn.execute(sql, rusqlite::params_from_iter(params.iter().map(lite))).unwrap() as u64
            }
            Target::Postgres(url) => {
                let (url, sql, params) = (url.clone(), sql.to_owned(), params.to_vec());
                std::thread::spawn(move || {
                    let mut client = pg_client(&url, db);
                    let cells: Vec<PgVal> = params.into_iter().map(PgVal).collect();
                    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        cells.iter().map(|c| c as &(dyn postgres::types::ToSql + Sync)).collect();
                    client.execute(&dollars(&sql), &refs).unwrap()
                })
                .join()
                .unwrap()
            }
        }
    }
}

fn file_of(db: Db) -> &'static str {
    match db {
        Db::Data => "custos.db",
        Db::Keys => "keys.db",
        Db::Dormant => "dormant.db",
    }
}

fn schema_of(db: Db) -> &'static str {
    match db {
        Db::Data => "custos",
        Db::Keys => "custos_keys",
        Db::Dormant => "custos_dormant",
    }
}

fn lite(v: &Val) -> rusqlite::types::Value {
    match v {
        Val::Null => rusqlite::types::Value::Null,
        Val::Int(i) => rusqlite::types::Value::Integer(*i),
        Val::Text(t) => rusqlite::types::Value::Text(t.clone()),
        Val::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

fn sqlite_rows(dir: &std::path::Path, db: Db, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
    let conn = rusqlite::Connection::open_with_flags(dir.join(file_of(db)), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(lite))).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match row.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => Val::Null,
                rusqlite::types::ValueRef::Integer(v) => Val::Int(v),
                rusqlite::types::ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                rusqlite::types::ValueRef::Blob(b) => Val::Blob(b.to_vec()),
                rusqlite::types::ValueRef::Real(r) => panic!("unexpected real {r}"),
            });
        }
        out.push(values);
    }
    out
}

fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

fn pg_client(url: &str, db: Db) -> postgres::Client {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client.batch_execute(&format!("SET search_path = {}", schema_of(db))).unwrap();
    client
}

fn pg_rows(url: &str, db: Db, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
    use postgres::types::Type;
    let mut client = pg_client(url, db);
    let cells: Vec<PgVal> = params.iter().cloned().map(PgVal).collect();
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
        cells.iter().map(|c| c as &(dyn postgres::types::ToSql + Sync)).collect();
    let rows = client.query(&dollars(sql), &refs).unwrap();
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    let ty = row.columns()[i].type_().clone();
                    let v = if ty == Type::INT8 {
                        row.get::<_, Option<i64>>(i).map(Val::Int)
                    } else if ty == Type::INT4 {
                        row.get::<_, Option<i32>>(i).map(|v| Val::Int(v.into()))
                    } else if ty == Type::BOOL {
                        row.get::<_, Option<bool>>(i).map(|v| Val::Int(v.into()))
                    } else if ty == Type::BYTEA {
                        row.get::<_, Option<Vec<u8>>>(i).map(Val::Blob)
                    } else {
                        row.get::<_, Option<String>>(i).map(Val::Text)
                    };
                    v.unwrap_or(Val::Null)
                })
                .collect()
        })
        .collect()
}

#[derive(Debug)]
struct PgVal(Val);

impl postgres::types::ToSql for PgVal {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match &self.0 {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Val::Int(v) => v.to_sql(ty, out),
            Val::Text(t) => t.as_str().to_sql(ty, out),
            Val::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}
