//! Shell-style patterns for route matching and the `glob` operator.

/// A shell-style pattern: `*` matches any run of characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    /// No wildcard: matching is string equality (the common case on the hot path).
    literal: bool,
}

impl Glob {
    /// Any string is a valid pattern.
    pub fn new(pattern: &str) -> Self {
        Self { pattern: pattern.to_owned(), literal: !pattern.contains(['*', '?']) }
    }

    /// Whether the pattern contains a wildcard (a plain string compares faster as equality).
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Whether `text` matches the whole pattern. Allocates only when a wildcard pattern meets
    /// non-ASCII text (where `?` must match a whole character, not a byte).
    pub fn matches(&self, text: &str) -> bool {
        if self.literal {
            return self.pattern == text;
        }
        if self.pattern.is_ascii() && text.is_ascii() {
            return wildcard(self.pattern.as_bytes(), text.as_bytes(), b'*', b'?');
        }
        let pattern: Vec<char> = self.pattern.chars().collect();
        let text: Vec<char> = text.chars().collect();
        wildcard(&pattern, &text, '*', '?')
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// Iterative matching with backtracking to the last `*`: linear in practice, and no pattern
/// can make it recurse or blow up.
fn wildcard<T: Copy + PartialEq>(pattern: &[T], text: &[T], any_run: T, any_one: T) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == any_one || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == any_run {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == any_run)
}
