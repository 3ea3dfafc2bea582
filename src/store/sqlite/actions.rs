//! What outputs asked the operator to change, read from a database file without the runtime or
//! a write: `switchboard check` shows it beside the configuration it validates (a group that
//! became a supergroup names the `chat_id` to set).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::store::StoreError;

/// Each output whose latest call for the operator has not been followed by a clean delivery,
/// with that call; nothing for a database that does not exist yet.
///
/// # Errors
/// The file is not a Switchboard database this release can read.
pub fn operator_actions(path: &Path) -> Result<Vec<(String, String)>, StoreError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut latest = connection.prepare(
        "SELECT d.output,
                MAX(CASE WHEN a.action IS NOT NULL THEN a.started_at END),
                MAX(CASE WHEN a.outcome = 'delivered' AND a.action IS NULL THEN a.started_at END)
         FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
         GROUP BY d.output ORDER BY d.output",
    )?;
    let outputs: Vec<(String, Option<i64>, Option<i64>)> =
        latest.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect::<Result<_, _>>()?;
    let mut action = connection.prepare(super::super::reads::OUTPUT_LAST_ACTION)?;
    let mut actions = Vec::new();
    for (output, last_action, last_clean) in outputs {
        let Some(at) = last_action else { continue };
        if last_clean.is_some_and(|clean| clean >= at) {
            continue;
        }
        if let Some(text) = action.query_row([&output], |row| row.get::<_, String>(0)).optional()? {
            actions.push((output, text));
        }
    }
    Ok(actions)
}
