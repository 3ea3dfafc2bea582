//! How rendered values are escaped: chosen by the destination, not by the template author.

/// The escaping a destination needs for values inserted with `{{ }}` (`{{{ }}}` stays raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escape {
    /// Nothing escaped: plain-text email, subjects, logs.
    Plain,
    /// Telegram's HTML parse mode: `&`, `<`, `>` and `"` become entities; nothing else is needed.
    TelegramHtml,
    /// HTML email bodies: `&`, `<`, `>`, `"`, `'`.
    Html,
    /// Inside a JSON string: quotes, backslashes and control characters.
    JsonString,
    /// A value in a form body or URL query: percent-encoded.
    Form,
}

impl Escape {
    /// Every variant, for building one registry each.
    pub const ALL: [Escape; 5] = [Escape::Plain, Escape::TelegramHtml, Escape::Html, Escape::JsonString, Escape::Form];

    /// The escaping function handlebars calls.
    pub fn function(self) -> fn(&str) -> String {
        match self {
            Self::Plain => |s| s.to_owned(),
            Self::TelegramHtml => telegram_html,
            Self::Html => html,
            Self::JsonString => json_string,
            Self::Form => form,
        }
    }
}

/// Escapes for Telegram's HTML parse mode.
pub fn telegram_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn html(text: &str) -> String {
    telegram_html(text).replace('\'', "&#39;")
}

fn json_string(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
}

fn form(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_destination_gets_its_escaping() {
        let hostile = r#"<b>"Tom" & 'Jerry'</b> \ 🙂"#;
        assert_eq!(Escape::Plain.function()(hostile), hostile);
        assert_eq!(
            Escape::TelegramHtml.function()(hostile),
            r#"&lt;b&gt;&quot;Tom&quot; &amp; 'Jerry'&lt;/b&gt; \ 🙂"#
        );
        assert_eq!(
            Escape::Html.function()(hostile),
            r#"&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt; \ 🙂"#
        );
        assert_eq!(Escape::JsonString.function()(hostile), r#"<b>\"Tom\" & 'Jerry'</b> \\ 🙂"#);
        assert_eq!(Escape::JsonString.function()("line\nbreak"), r"line\nbreak");
        assert_eq!(Escape::JsonString.function()(""), "");
        assert_eq!(Escape::Form.function()("a b&c=д"), "a%20b%26c%3D%D0%B4");
    }
}
