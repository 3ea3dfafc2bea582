//! Splitting Telegram HTML into messages of at most 4,096 characters without cutting a tag or
//! an entity in half: at a line break if possible, else at a space, else between characters.
//! Tags open at a cut are closed at the end of one part and reopened at the start of the next,
//! so every part is valid HTML on its own.

/// Telegram's limit on a message's text.
pub const TELEGRAM_LIMIT: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    /// `<b>`, `<a href="…">`: the tag's name and its full text.
    Open(&'a str, &'a str),
    Close(&'a str, &'a str),
    /// Text: one character, or one entity such as `&amp;`.
    Text(&'a str),
}

fn tokenize(html: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '<' => rest.find('>').map(|end| end + 1),
            '&' => {
                rest.find(';').filter(|end| *end <= 10 && !rest[1..*end].contains([' ', '&', '<'])).map(|end| end + 1)
            }
            _ => None,
        };
        let len = len.unwrap_or(c.len_utf8());
        let piece = &rest[..len];
        tokens.push(if piece.len() > 1 && piece.starts_with("</") {
            Token::Close(tag_name(&piece[2..]), piece)
        } else if piece.len() > 1 && piece.starts_with('<') {
            Token::Open(tag_name(&piece[1..]), piece)
        } else {
            Token::Text(piece)
        });
        rest = &rest[len..];
    }
    tokens
}

fn tag_name(after_bracket: &str) -> &str {
    let end = after_bracket.find(|c: char| !c.is_ascii_alphanumeric() && c != '-').unwrap_or(after_bracket.len());
    &after_bracket[..end]
}

/// Length as Telegram counts it (UTF-16 code units), a safe upper bound for the text after
/// entities are parsed.
fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Splits `html` into parts of at most `limit` units each.
pub fn split(html: &str, limit: usize) -> Vec<String> {
    if units(html) <= limit {
        return vec![html.to_owned()];
    }
    let tokens = tokenize(html);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut open: Vec<(&str, &str)> = Vec::new();
    while start < tokens.len() {
        let prefix: String = open.iter().map(|(_, tag)| *tag).collect();
        let mut size = units(&prefix);
        let mut stack = open.clone();
        let mut end = start;
        let mut best_line = None;
        let mut best_space = None;
        // Room must remain for the closing tags of whatever is open at the cut.
        let closing = |stack: &[(&str, &str)]| stack.iter().map(|(name, _)| name.len() + 3).sum::<usize>();
        while end < tokens.len() {
            let piece = match &tokens[end] {
                Token::Open(_, text) | Token::Close(_, text) | Token::Text(text) => *text,
            };
            let mut next_stack = stack.clone();
            match &tokens[end] {
                Token::Open(name, text) => next_stack.push((name, text)),
                Token::Close(name, _) => {
                    if let Some(at) = next_stack.iter().rposition(|(n, _)| n == name) {
                        next_stack.truncate(at);
                    }
                }
                Token::Text(_) => {}
            }
            if size + units(piece) + closing(&next_stack) > limit && end > start {
                break;
            }
            size += units(piece);
            stack = next_stack;
            end += 1;
            if matches!(tokens[end - 1], Token::Text("\n")) {
                best_line = Some((end, stack.clone()));
            } else if matches!(tokens[end - 1], Token::Text(" ")) {
                best_space = Some((end, stack.clone()));
            }
        }
        let (cut, cut_stack) =
            if end >= tokens.len() { (end, stack) } else { best_line.or(best_space).unwrap_or((end, stack)) };
        let body: String = tokens[start..cut]
            .iter()
            .map(|t| match t {
                Token::Open(_, text) | Token::Close(_, text) | Token::Text(text) => *text,
            })
            .collect();
        let closing_tags: String = cut_stack.iter().rev().map(|(name, _)| format!("</{name}>")).collect();
        let part = format!("{prefix}{body}{closing_tags}");
        let trimmed = part.trim_end_matches(['\n', ' ']).to_owned();
        if !trimmed.trim().is_empty() {
            parts.push(trimmed);
        }
        open = cut_stack;
        start = cut;
        // A part never starts with the line break it was cut at.
        while start < tokens.len() && matches!(tokens[start], Token::Text("\n") | Token::Text(" ")) {
            start += 1;
        }
    }
    parts
}

/// The text of Telegram HTML without tags and with entities decoded: what is sent when Telegram
/// cannot parse the markup, rather than lose the alert.
pub fn to_plain(html: &str) -> String {
    tokenize(html)
        .into_iter()
        .filter_map(|token| match token {
            Token::Text(text) => Some(match text {
                "&amp;" => "&",
                "&lt;" => "<",
                "&gt;" => ">",
                "&quot;" => "\"",
                "&#39;" => "'",
                other => other,
            }),
            Token::Open(..) | Token::Close(..) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_stay_whole() {
        assert_eq!(split("<b>hi</b>", 4096), ["<b>hi</b>"]);
    }

    #[test]
    fn long_messages_split_at_lines_and_stay_valid() {
        let line = "строка &amp; <i>курсив</i> текст\n";
        let html = format!("<b>Заголовок</b>\n{}", line.repeat(400));
        let parts = split(&html, 4096);
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(units(part) <= 4096, "{}", units(part));
            assert_eq!(part.matches("<i>").count(), part.matches("</i>").count(), "{part}");
            assert!(!part.ends_with('&') && !part.contains("&am\n"));
        }
        let rejoined = parts.join("\n");
        assert_eq!(to_plain(&rejoined).matches("строка").count(), 400, "nothing is lost");
    }

    #[test]
    fn an_open_tag_is_closed_and_reopened_across_a_cut() {
        let html = format!("<blockquote>{}</blockquote>", "слово ".repeat(2000));
        let parts = split(&html, 4096);
        assert!(parts.len() >= 3);
        for part in &parts {
            assert!(part.starts_with("<blockquote>") && part.ends_with("</blockquote>"), "{}", &part[..40]);
            assert!(units(part) <= 4096);
        }
    }

    #[test]
    fn a_line_without_spaces_is_cut_between_tokens_never_inside_an_entity() {
        let html = "&amp;".repeat(1000) + &"я".repeat(3000);
        for part in split(&html, 4096) {
            assert!(units(&part) <= 4096);
            assert!(!part.ends_with("&am") && !part.ends_with("&a") && !part.ends_with('&'));
        }
    }

    #[test]
    fn emoji_count_as_two_units() {
        let html = "🙂".repeat(3000);
        let parts = split(&html, 4096);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| units(p) <= 4096));
    }

    #[test]
    fn plain_fallback_drops_tags_and_decodes_entities() {
        assert_eq!(to_plain("<b>A &amp; B</b> &lt;x&gt; &quot;q&quot; <a href=\"u\">link</a>"), "A & B <x> \"q\" link");
        assert_eq!(to_plain("broken <b>tag & text"), "broken tag & text");
    }
}
