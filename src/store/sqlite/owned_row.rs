//! Rows the writer thread reads (what a claim leased) kept as SQLite returned them, to be decoded
//! by [`crate::store::rows`] — the same decoders as every other read — on the runtime's workers
//! rather than on the one writing thread.

use std::sync::Arc;

use rusqlite::types::Value;

use crate::store::StoreError;
use crate::store::rows::Columns;

/// One row as SQLite returned it, its columns by name.
pub(super) struct OwnedRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl OwnedRow {
    pub(super) fn all(
        statement: &mut rusqlite::CachedStatement<'_>,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Self>, StoreError> {
        let names: Arc<[String]> = statement.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = statement.query(params)?;
        let mut owned = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..names.len()).map(|i| row.get::<_, Value>(i)).collect::<Result<_, _>>()?;
            owned.push(Self { names: names.clone(), values });
        }
        Ok(owned)
    }

    fn value(&self, column: &str) -> Result<&Value, sqlx::Error> {
        let index = self.names.iter().position(|name| name == column);
        index.map(|i| &self.values[i]).ok_or_else(|| sqlx::Error::ColumnNotFound(column.to_owned()))
    }

    pub(super) fn str(&self, column: &str) -> Option<&str> {
        match self.value(column) {
            Ok(Value::Text(text)) => Some(text),
            _ => None,
        }
    }
}

fn mismatch(column: &str, found: &Value) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: column.to_owned(), source: format!("unexpected {:?}", found.data_type()).into() }
}

impl Columns for OwnedRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.maybe_text(column)?.ok_or_else(|| mismatch(column, &Value::Null))
    }
    fn maybe_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self.value(column)? {
            Value::Text(text) => Ok(Some(text.clone())),
            Value::Null => Ok(None),
            other => Err(mismatch(column, other)),
        }
    }
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.maybe_int(column)?.ok_or_else(|| mismatch(column, &Value::Null))
    }
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        match self.value(column)? {
            Value::Integer(int) => Ok(Some(*int)),
            Value::Null => Ok(None),
            other => Err(mismatch(column, other)),
        }
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        match self.value(column)? {
            Value::Blob(bytes) => Ok(bytes.clone()),
            other => Err(mismatch(column, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_rows_decode_by_column_name_and_refuse_the_wrong_type() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement =
            connection.prepare_cached("SELECT 'a' AS name, 7 AS number, NULL AS absent, x'0102' AS bytes").unwrap();
        let rows = OwnedRow::all(&mut statement, []).unwrap();
        let [row] = rows.as_slice() else { panic!("one row") };
        assert_eq!(row.text("name").unwrap(), "a");
        assert_eq!(row.int("number").unwrap(), 7);
        assert_eq!(row.maybe_int("absent").unwrap(), None);
        assert_eq!(row.maybe_text("absent").unwrap(), None);
        assert_eq!(row.bytes("bytes").unwrap(), vec![1, 2]);
        assert!(row.text("number").is_err(), "an integer is not text");
        assert!(row.int("absent").is_err(), "NULL is not a required integer");
        assert!(matches!(row.text("missing"), Err(sqlx::Error::ColumnNotFound(_))));
    }
}
