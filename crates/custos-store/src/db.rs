//! The one place that knows which database a statement runs on.
//!
//! The store's statements are written once, in the SQL both backends
//! accept (the PostgreSQL schema mirrors SQLite's on purpose, see
//! `migrations/postgres`), with SQLite's `?N` placeholders; on PostgreSQL
//! they are rewritten to `$N` once, when first prepared on a connection.
//! Values cross this boundary as four kinds only — null, 64-bit integer,
//! text, bytes — so a flag is 0/1 and a count is an `i64` on both sides.
//! Where the dialects do differ, a statement asks [`Db::dialect`].

use std::cell::RefCell;
use std::collections::HashMap;

use crate::{Result, StoreError};

/// One value bound to, or read from, a statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Cell<'_> {
    /// What kind of value it is, for errors (never the value: it may be
    /// ciphertext or an id).
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Int(_) => "integer",
            Cell::Text(_) => "text",
            Cell::Blob(_) => "bytes",
        }
    }
}

/// A Rust value a statement can take as a parameter.
pub(crate) trait Param {
    fn cell(&self) -> Result<Cell<'_>>;
}

impl<T: Param + ?Sized> Param for &T {
    fn cell(&self) -> Result<Cell<'_>> {
        (**self).cell()
    }
}

impl<T: Param> Param for Option<T> {
    fn cell(&self) -> Result<Cell<'_>> {
        match self {
            Some(v) => v.cell(),
            None => Ok(Cell::Null),
        }
    }
}

impl Param for str {
    fn cell(&self) -> Result<Cell<'_>> {
        Ok(Cell::Text(self))
    }
}

impl Param for String {
    fn cell(&self) -> Result<Cell<'_>> {
        Ok(Cell::Text(self))
    }
}

impl Param for [u8] {
    fn cell(&self) -> Result<Cell<'_>> {
        Ok(Cell::Blob(self))
    }
}

impl Param for Vec<u8> {
    fn cell(&self) -> Result<Cell<'_>> {
        Ok(Cell::Blob(self))
    }
}

impl Param for bool {
    fn cell(&self) -> Result<Cell<'_>> {
        Ok(Cell::Int(i64::from(*self)))
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn cell(&self) -> Result<Cell<'_>> {
                i64::try_from(*self)
                    .map(Cell::Int)
                    .map_err(|_| StoreError::Database(format!("{} does not fit a 64-bit integer", self)))
            }
        }
    )*};
}
int_param!(i64, i32, u16, u32, u64, usize);

/// `params![a, b, …]`: the parameters of one statement, by reference.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::db::Param]
    };
    ($($x:expr),+ $(,)?) => {
        &[$(&$x as &dyn $crate::db::Param),+] as &[&dyn $crate::db::Param]
    };
}
pub(crate) use params;

/// A Rust value a column can be read into.
pub(crate) trait FromCell: Sized {
    fn from_cell(cell: Cell<'_>) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: Cell<'_>) -> Option<i64> {
        match cell {
            Cell::Int(v) => Some(v),
            _ => None,
        }
    }
}

macro_rules! int_from_cell {
    ($($t:ty),*) => {$(
        impl FromCell for $t {
            fn from_cell(cell: Cell<'_>) -> Option<$t> {
                i64::from_cell(cell).and_then(|v| <$t>::try_from(v).ok())
            }
        }
    )*};
}
int_from_cell!(i32, u16, u32, u64, usize);

impl FromCell for bool {
    fn from_cell(cell: Cell<'_>) -> Option<bool> {
        i64::from_cell(cell).map(|v| v != 0)
    }
}

impl FromCell for String {
    fn from_cell(cell: Cell<'_>) -> Option<String> {
        match cell {
            Cell::Text(v) => Some(v.to_owned()),
            _ => None,
        }
    }
}

impl FromCell for Vec<u8> {
    fn from_cell(cell: Cell<'_>) -> Option<Vec<u8>> {
        match cell {
            Cell::Blob(v) => Some(v.to_vec()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: Cell<'_>) -> Option<Option<T>> {
        match cell {
            Cell::Null => Some(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// A column index (only `usize`: lets `r.get(0)` infer its index type).
pub(crate) trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of a result, on either backend.
pub(crate) enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    pub(crate) fn get<I: ColumnIndex, T: FromCell>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        let mismatch = |found: &str| StoreError::Database(format!("column {idx}: unexpected {found}"));
        match self {
            Row::Lite(r) => {
                use rusqlite::types::ValueRef;
                let cell = match r.get_ref(idx)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Text(t) => {
                        Cell::Text(std::str::from_utf8(t).map_err(|_| mismatch("text that is not UTF-8"))?)
                    }
                    ValueRef::Blob(b) => Cell::Blob(b),
                    ValueRef::Real(_) => return Err(mismatch("real number")),
                };
                T::from_cell(cell).ok_or_else(|| mismatch(cell.kind()))
            }
            Row::Pg(r) => {
                use postgres::types::Type;
                let columns = r.columns();
                let ty = columns.get(idx).ok_or_else(|| mismatch("column count"))?.type_();
                let pg = |e: postgres::Error| pg_error(e);
                let value = if *ty == Type::INT8 {
                    r.try_get::<_, Option<i64>>(idx).map_err(pg)?.map(PgOwned::Int)
                } else if *ty == Type::INT4 {
                    r.try_get::<_, Option<i32>>(idx).map_err(pg)?.map(|v| PgOwned::Int(i64::from(v)))
                } else if *ty == Type::INT2 {
                    r.try_get::<_, Option<i16>>(idx).map_err(pg)?.map(|v| PgOwned::Int(i64::from(v)))
                } else if *ty == Type::BOOL {
                    r.try_get::<_, Option<bool>>(idx).map_err(pg)?.map(|v| PgOwned::Int(i64::from(v)))
                } else if *ty == Type::BYTEA {
                    r.try_get::<_, Option<&[u8]>>(idx).map_err(pg)?.map(PgOwned::Blob)
                } else {
                    r.try_get::<_, Option<&str>>(idx).map_err(pg)?.map(PgOwned::Text)
                };
                let cell = match value {
                    None => Cell::Null,
                    Some(PgOwned::Int(v)) => Cell::Int(v),
                    Some(PgOwned::Text(t)) => Cell::Text(t),
                    Some(PgOwned::Blob(b)) => Cell::Blob(b),
                };
                T::from_cell(cell).ok_or_else(|| mismatch(cell.kind()))
            }
        }
    }
}

enum PgOwned<'a> {
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Which SQL a statement may use where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection with its prepared statements, by SQL text.
pub(crate) struct PgConn {
    pub(crate) client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub(crate) fn new(client: postgres::Client) -> PgConn {
        PgConn { client, statements: HashMap::new() }
    }

    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(&dollar_placeholders(sql)).map_err(pg_error)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// A connection of either backend, for the length of a transaction.
#[derive(Clone, Copy)]
pub(crate) enum Db<'c> {
    Lite(&'c rusqlite::Connection),
    Pg(&'c RefCell<PgConn>),
}

impl<'c> Db<'c> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Lite(_) => Dialect::Sqlite,
            Db::Pg(_) => Dialect::Postgres,
        }
    }

    pub(crate) fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>> {
        Ok(match *self {
            Db::Lite(c) => Stmt::Lite(c.prepare_cached(sql)?),
            Db::Pg(c) => Stmt::Pg(c, c.borrow_mut().prepare(sql)?),
        })
    }

    /// Statements without parameters or results (transaction control).
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Lite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(c) => c.borrow_mut().client.batch_execute(sql).map_err(pg_error),
        }
    }

    /// A savepoint's statements: cached on SQLite, where they run twice per
    /// job on the hot path; sent as simple queries to PostgreSQL.
    pub(crate) fn control(&self, sql: &str) -> Result<()> {
        match self {
            Db::Lite(c) => {
                c.prepare_cached(sql)?.execute([])?;
                Ok(())
            }
            Db::Pg(_) => self.execute_batch(sql),
        }
    }

    pub(crate) fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T, NoRow> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// A prepared statement.
pub(crate) enum Stmt<'c> {
    Lite(rusqlite::CachedStatement<'c>),
    Pg(&'c RefCell<PgConn>, postgres::Statement),
}

/// `query_row` found no row (see [`Optional`]), or failed.
#[derive(Debug)]
pub(crate) enum NoRow {
    None,
    Failed(StoreError),
}

impl From<StoreError> for NoRow {
    fn from(e: StoreError) -> NoRow {
        NoRow::Failed(e)
    }
}

impl From<rusqlite::Error> for NoRow {
    fn from(e: rusqlite::Error) -> NoRow {
        NoRow::Failed(e.into())
    }
}

impl From<NoRow> for StoreError {
    fn from(e: NoRow) -> StoreError {
        match e {
            NoRow::None => StoreError::Database("the query returned no row".into()),
            NoRow::Failed(e) => e,
        }
    }
}

/// `.optional()`: no row becomes `None`.
pub(crate) trait Optional<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> Optional<T> for Result<T, NoRow> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(NoRow::None) => Ok(None),
            Err(NoRow::Failed(e)) => Err(e),
        }
    }
}

/// The rows of a query, read as they are iterated (SQLite) or all at once
/// (PostgreSQL).
pub(crate) type Rows<'s, T> = Box<dyn Iterator<Item = Result<T>> + 's>;

fn lite_params<'p>(params: &'p [&dyn Param]) -> Result<Vec<LiteCell<'p>>> {
    params.iter().map(|p| p.cell().map(LiteCell)).collect()
}

fn pg_params<'p>(params: &'p [&dyn Param]) -> Result<Vec<PgCell<'p>>> {
    params.iter().map(|p| p.cell().map(PgCell)).collect()
}

fn pg_refs<'a>(cells: &'a [PgCell<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    cells.iter().map(|c| c as &(dyn postgres::types::ToSql + Sync)).collect()
}

impl<'c> Stmt<'c> {
    pub(crate) fn execute(&mut self, params: &[&dyn Param]) -> Result<usize> {
        match self {
            Stmt::Lite(s) => {
                let cells = lite_params(params)?;
                Ok(s.execute(rusqlite::params_from_iter(cells.iter()))?)
            }
            Stmt::Pg(c, s) => {
                let cells = pg_params(params)?;
                let n = c.borrow_mut().client.execute(&*s, &pg_refs(&cells)).map_err(pg_error)?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    pub(crate) fn query_row<T>(
        &mut self,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T, NoRow> {
        match self {
            Stmt::Lite(s) => {
                let cells = lite_params(params)?;
                let mut rows = s.query(rusqlite::params_from_iter(cells.iter()))?;
                match rows.next()? {
                    Some(r) => Ok(f(&Row::Lite(r))?),
                    None => Err(NoRow::None),
                }
            }
            Stmt::Pg(c, s) => {
                let cells = pg_params(params)?;
                let rows = c.borrow_mut().client.query(&*s, &pg_refs(&cells)).map_err(pg_error)?;
                match rows.first() {
                    Some(r) => Ok(f(&Row::Pg(r))?),
                    None => Err(NoRow::None),
                }
            }
        }
    }

    pub(crate) fn query_map<'s, T: 's>(
        &'s mut self,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T> + 's,
    ) -> Result<Rows<'s, T>> {
        match self {
            Stmt::Lite(s) => {
                let cells = lite_params(params)?;
                let mut rows = s.query(rusqlite::params_from_iter(cells.iter()))?;
                let mut done = false;
                Ok(Box::new(std::iter::from_fn(move || {
                    if done {
                        return None;
                    }
                    match rows.next() {
                        Ok(Some(r)) => Some(f(&Row::Lite(r))),
                        Ok(None) => {
                            done = true;
                            None
                        }
                        Err(e) => {
                            done = true;
                            Some(Err(e.into()))
                        }
                    }
                })))
            }
            Stmt::Pg(c, s) => {
                let cells = pg_params(params)?;
                let rows = c.borrow_mut().client.query(&*s, &pg_refs(&cells)).map_err(pg_error)?;
                let mapped: Vec<Result<T>> = rows.iter().map(|r| f(&Row::Pg(r))).collect();
                Ok(Box::new(mapped.into_iter()))
            }
        }
    }
}

/// A cell bound to a SQLite statement.
struct LiteCell<'a>(Cell<'a>);

impl rusqlite::ToSql for LiteCell<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Cell::Null => ValueRef::Null,
            Cell::Int(v) => ValueRef::Integer(v),
            Cell::Text(t) => ValueRef::Text(t.as_bytes()),
            Cell::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A cell bound to a PostgreSQL statement, in the type the server inferred
/// for its placeholder (an integer goes to a `bigint`, `integer` or
/// `boolean` parameter alike).
#[derive(Debug)]
struct PgCell<'a>(Cell<'a>);

impl postgres::types::ToSql for PgCell<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match self.0 {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Cell::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Cell::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Cell::Int(v) if *ty == Type::BOOL => (v != 0).to_sql(ty, out),
            Cell::Text(t) if <&str as postgres::types::ToSql>::accepts(ty) => t.to_sql(ty, out),
            Cell::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            other => Err(format!("cannot bind {} to a parameter of type {ty}", other.kind()).into()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// PostgreSQL's refusal as a store error: a unique violation is a
/// conflict; anything else a database error with the server's message
/// (never data: values arrive as parameters, not in the SQL text).
pub(crate) fn pg_error(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) if d.code() == &postgres::error::SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(format!("PostgreSQL: {}", d.message()))
        }
        Some(d) => StoreError::Database(format!("PostgreSQL: {} ({})", d.message(), d.code().code())),
        None => StoreError::Database(format!("PostgreSQL: {e}")),
    }
}

/// `?N` → `$N`, outside quoted text and identifiers.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_quotes_only() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND \"?3\" = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND \"?3\" = $12"
        );
    }

    #[test]
    fn integers_that_do_not_fit_are_refused_not_wrapped() {
        assert!(u64::MAX.cell().is_err());
        assert!(matches!(7u32.cell(), Ok(Cell::Int(7))));
        assert_eq!(u16::from_cell(Cell::Int(70_000)), None);
        assert_eq!(Option::<String>::from_cell(Cell::Null), Some(None));
        assert_eq!(bool::from_cell(Cell::Int(1)), Some(true));
    }
}
