//! `${VAR}` expansion in configuration strings.
//!
//! Expansion runs on parsed string values, never on the raw text, so a variable's value can never
//! change the structure of the file (a quote or newline in a password stays a character).

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Other `$` signs are kept.
///
/// # Errors
/// A variable that is unset (and has no default), or an unterminated `${`.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
            let (name, default) = match body[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&body[..end], None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("`${{{}}}` is not a valid variable name", &body[..end]));
            }
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(format!("environment variable {name} is not set")),
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
            ("${QUOTE}", Ok("a\"b\nc")),
            ("cost: $5 and $$HOME", Ok("cost: $5 and $HOME")),
            ("${MISSING}", Err("environment variable MISSING is not set")),
            ("${TOKEN", Err("unterminated `${` in `${TOKEN`")),
            ("${A B}", Err("`${A B}` is not a valid variable name")),
        ];
        for (input, expected) in cases {
            assert_eq!(expand(input, &env).as_deref(), expected.map_err(String::from).as_deref(), "{input}");
        }
    }
}
