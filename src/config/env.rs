//! `${VAR}` expansion in configuration strings.
//!
//! Expansion runs on parsed string values, never on the raw text, so a variable's value can never
//! change the structure of the file (a quote or newline in a password stays a character).

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("unterminated `${{` in `{0}`")]
    Unterminated(String),
    #[error("`${{{0}}}` is not a valid variable name")]
    BadName(String),
    #[error("environment variable {0} is not set")]
    Unset(String),
}

/// Expands `${VAR}`, `${VAR:-default}` (the default when unset) and `${VAR:+word}` (the word
/// when set, else nothing: `enabled = "${TELEGRAM_BOT_TOKEN:+true}"`); `$$` is a literal `$`.
/// Other `$` signs are kept.
///
/// # Errors
/// A variable that is unset (and has no default), or an unterminated `${`.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| ExpandError::Unterminated(text.to_owned()))?;
            let inner = &body[..end];
            let (name, operator, word) = match inner.find(":-").or_else(|| inner.find(":+")) {
                Some(at) => (&inner[..at], &inner[at..at + 2], &inner[at + 2..]),
                None => (inner, "", ""),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ExpandError::BadName(inner.to_owned()));
            }
            match (lookup(name), operator) {
                (Some(_), ":+") => out.push_str(word),
                (None, ":+") => {}
                (Some(value), _) => out.push_str(&value),
                (None, ":-") => out.push_str(word),
                (None, _) => return Err(ExpandError::Unset(name.to_owned())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("123:abc".to_owned()),
            "QUOTE" => Some("a\"b\nc".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        let cases = [
            ("${TOKEN}", Ok("123:abc")),
            ("bot${TOKEN}/x", Ok("bot123:abc/x")),
            ("${MISSING:-fallback}", Ok("fallback")),
            ("${MISSING:-}", Ok("")),
            ("${TOKEN:+true}", Ok("true")),
            ("${MISSING:+true}", Ok("")),
            ("${TOKEN:-x}", Ok("123:abc")),
            ("${QUOTE}", Ok("a\"b\nc")),
            ("cost: $5 and $$HOME", Ok("cost: $5 and $HOME")),
            ("${MISSING}", Err("environment variable MISSING is not set")),
            ("${TOKEN", Err("unterminated `${` in `${TOKEN`")),
            ("${A B}", Err("`${A B}` is not a valid variable name")),
        ];
        for (input, expected) in cases {
            assert_eq!(
                expand(input, &env).map_err(|e| e.to_string()).as_deref(),
                expected.map_err(String::from).as_deref(),
                "{input}"
            );
        }
    }
}
