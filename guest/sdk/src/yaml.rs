//! A reader for the YAML a kubeconfig view is written in, and no more.
//!
//! Why not a YAML crate: the one the host writes with (serde-saphyr) adds ~550 KB of
//! wasm to every plugin, more than the rest of the blocking SDK together. The view
//! is a fixed shape written by one serializer (docs/guest-contract.md), so this
//! reads block mappings and sequences (including `- key: value` items), plain,
//! single- and double-quoted scalars, literal and folded block scalars (`|`, `>-`,
//! … which serde-saphyr uses for long and multi-line strings), comments, empty
//! flow collections (`{}`, `[]`), and whole-document JSON. Anything else (anchors,
//! tags, non-empty flow collections) is an error that names the line.

use std::collections::BTreeMap;

/// A parsed YAML node. Scalars stay strings: the view holds nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Map(BTreeMap<String, Node>),
    Seq(Vec<Node>),
    Str(String),
    Null,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(map) => map.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }
}

/// Parses one YAML (or JSON) document.
pub(crate) fn parse(text: &str) -> Result<Node, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| e.to_string())?;
        return Ok(from_json(json));
    }
    let lines: Vec<Line> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, raw)| Line::new(i + 1, raw))
        .collect();
    let mut parser = Parser { lines, pos: 0 };
    parser.skip_insignificant();
    let Some(first) = parser.peek() else {
        return Ok(Node::Null);
    };
    let indent = first.indent;
    let node = parser.node(indent)?;
    parser.skip_insignificant();
    match parser.peek() {
        None => Ok(node),
        Some(line) => Err(format!("line {}: unexpected indentation", line.number)),
    }
}

fn from_json(value: serde_json::Value) -> Node {
    match value {
        serde_json::Value::Null => Node::Null,
        serde_json::Value::String(s) => Node::Str(s),
        serde_json::Value::Array(items) => Node::Seq(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Node::Map(map.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
        other => Node::Str(other.to_string()),
    }
}

struct Line {
    number: usize,
    indent: usize,
    /// The line after its indentation (for a `- ` item rewritten in place, after the dash).
    content: String,
}

impl Line {
    fn new(number: usize, raw: &str) -> Line {
        let raw = raw.trim_end_matches('\r');
        let content = raw.trim_start_matches(' ');
        Line {
            number,
            indent: raw.len() - content.len(),
            content: content.to_string(),
        }
    }

    fn insignificant(&self) -> bool {
        let c = self.content.trim();
        c.is_empty() || c.starts_with('#') || c == "---" || c == "..."
    }

    fn is_item(&self) -> bool {
        self.content == "-" || self.content.starts_with("- ")
    }
}

struct Parser {
    lines: Vec<Line>,
    pos: usize,
}

impl Parser {
    fn skip_insignificant(&mut self) {
        while self.lines.get(self.pos).is_some_and(Line::insignificant) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<&Line> {
        self.lines.get(self.pos)
    }

    /// The block node starting at the current line, indented `indent`.
    fn node(&mut self, indent: usize) -> Result<Node, String> {
        match self.peek() {
            Some(line) if line.is_item() => self.sequence(indent),
            Some(_) => self.mapping(indent),
            None => Ok(Node::Null),
        }
    }

    fn sequence(&mut self, indent: usize) -> Result<Node, String> {
        let mut items = Vec::new();
        loop {
            self.skip_insignificant();
            let Some(line) = self.lines.get_mut(self.pos) else {
                break;
            };
            if line.indent != indent || !line.is_item() {
                break;
            }
            let rest = line.content[1..].trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.pos += 1;
                items.push(self.nested(indent)?);
                continue;
            }
            // `- key: value` opens a mapping (or `- - x` a sequence) at the item's
            // column: rewrite the line as if the dash were a space, then parse it.
            let column = indent + (line.content.len() - rest.len());
            if key_split(rest).is_some() || rest == "-" || rest.starts_with("- ") {
                line.indent = column;
                line.content = rest.to_string();
                items.push(self.node(column)?);
            } else {
                let number = line.number;
                let text = rest.to_string();
                self.pos += 1;
                items.push(self.scalar_or_block(&text, indent, number)?);
            }
        }
        Ok(Node::Seq(items))
    }

    fn mapping(&mut self, indent: usize) -> Result<Node, String> {
        let mut map = BTreeMap::new();
        loop {
            self.skip_insignificant();
            let Some(line) = self.peek() else { break };
            if line.indent < indent || (line.indent == indent && line.is_item()) {
                break;
            }
            if line.indent > indent {
                return Err(format!("line {}: unexpected indentation", line.number));
            }
            let number = line.number;
            let (key, value) = key_split(&line.content)
                .ok_or_else(|| format!("line {number}: expected `key: value`"))?;
            let key = match scalar(key, number)? {
                Node::Str(key) => key,
                _ => return Err(format!("line {number}: unsupported key")),
            };
            let value = value.to_string();
            self.pos += 1;
            let node = if value.is_empty() || value.starts_with('#') {
                self.nested(indent)?
            } else {
                self.scalar_or_block(&value, indent, number)?
            };
            map.insert(key, node);
        }
        Ok(Node::Map(map))
    }

    /// The value of a key or item written on the lines below it: more indented,
    /// or a sequence at the same indentation as a mapping key (`key:\n- item`).
    fn nested(&mut self, parent: usize) -> Result<Node, String> {
        self.skip_insignificant();
        match self.peek() {
            Some(line) if line.indent > parent => {
                let indent = line.indent;
                self.node(indent)
            }
            Some(line) if line.indent == parent && line.is_item() => self.sequence(parent),
            _ => Ok(Node::Null),
        }
    }

    fn scalar_or_block(
        &mut self,
        text: &str,
        parent: usize,
        number: usize,
    ) -> Result<Node, String> {
        let header = text.split(" #").next().unwrap_or(text).trim();
        if header.starts_with('|') || header.starts_with('>') {
            return self.block_scalar(header, parent, number);
        }
        scalar(text, number)
    }

    /// `|` (literal) or `>` (folded) with optional chomping (`-`, `+`) and
    /// indentation digit; content is every following line indented past `parent`.
    fn block_scalar(&mut self, header: &str, parent: usize, number: usize) -> Result<Node, String> {
        let folded = header.starts_with('>');
        let mut chomp = ' ';
        let mut explicit_indent = None;
        for c in header[1..].chars() {
            match c {
                '-' | '+' => chomp = c,
                '1'..='9' => explicit_indent = c.to_digit(10).map(|d| parent + d as usize),
                _ => return Err(format!("line {number}: bad block scalar header {header:?}")),
            }
        }
        let mut raw = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            let blank = line.content.trim().is_empty();
            if !blank && line.indent <= parent {
                break;
            }
            raw.push((line.indent, line.content.as_str(), blank));
            self.pos += 1;
        }
        let indent = explicit_indent.unwrap_or_else(|| {
            raw.iter()
                .find(|(_, _, blank)| !blank)
                .map_or(parent + 1, |(i, _, _)| *i)
        });
        let lines: Vec<String> = raw
            .iter()
            .map(|(i, content, blank)| match blank {
                true => String::new(),
                false => format!("{}{content}", " ".repeat(i.saturating_sub(indent))),
            })
            .collect();
        let body_end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        let trailing_blank = lines.len() - body_end;
        let body = &lines[..body_end];
        let mut text = String::new();
        for (i, line) in body.iter().enumerate() {
            if i > 0 {
                let prev = &body[i - 1];
                let joinable = folded
                    && !line.is_empty()
                    && !prev.is_empty()
                    && !line.starts_with(' ')
                    && !prev.starts_with(' ');
                text.push(if joinable { ' ' } else { '\n' });
            }
            text.push_str(line);
        }
        if folded {
            // In folded text an empty line stands for one line break, not two.
            text = text.replace("\n\n", "\n");
        }
        match chomp {
            '-' => {}
            '+' if !body.is_empty() => text.push_str(&"\n".repeat(1 + trailing_blank)),
            _ if !body.is_empty() => text.push('\n'),
            _ => {}
        }
        Ok(Node::Str(text))
    }
}

/// Splits `key: value` (or `key:`) at the first `:` that ends the key, outside quotes.
fn key_split(content: &str) -> Option<(&str, &str)> {
    let bytes = content.as_bytes();
    let mut i = 0;
    if let Some(&quote @ (b'"' | b'\'')) = bytes.first() {
        i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quote == b'"' => i += 2,
                b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
                b if b == quote => break,
                _ => i += 1,
            }
        }
    }
    while i < bytes.len() {
        if bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some((content[..i].trim(), content[i + 1..].trim()));
        }
        if bytes[i] == b' ' && bytes.get(i + 1) == Some(&b'#') {
            return None;
        }
        i += 1;
    }
    None
}

/// A scalar written on one line.
fn scalar(text: &str, number: usize) -> Result<Node, String> {
    let text = text.trim();
    match text.as_bytes().first() {
        Some(b'"') => double_quoted(text, number).map(Node::Str),
        Some(b'\'') => {
            let end = closing_single_quote(text)
                .ok_or_else(|| format!("line {number}: unterminated quoted string"))?;
            Ok(Node::Str(text[1..end].replace("''", "'")))
        }
        Some(b'{') if text.starts_with("{}") => Ok(Node::Map(BTreeMap::new())),
        Some(b'[') if text.starts_with("[]") => Ok(Node::Seq(Vec::new())),
        Some(b'{' | b'[' | b'&' | b'*' | b'!') => {
            Err(format!("line {number}: unsupported YAML ({text})"))
        }
        _ => {
            let plain = match text.find(" #") {
                Some(i) => text[..i].trim_end(),
                None => text,
            };
            Ok(match plain {
                "" | "~" | "null" | "Null" | "NULL" => Node::Null,
                other => Node::Str(other.to_string()),
            })
        }
    }
}

fn closing_single_quote(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

fn double_quoted(text: &str, number: usize) -> Result<String, String> {
    let unterminated = || format!("line {number}: unterminated quoted string");
    let mut out = String::new();
    let mut chars = text[1..].chars();
    loop {
        match chars.next().ok_or_else(unterminated)? {
            '"' => return Ok(out),
            '\\' => {
                let escaped = chars.next().ok_or_else(unterminated)?;
                let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Result<char, String> {
                    let digits: String = chars.by_ref().take(n).collect();
                    u32::from_str_radix(&digits, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("line {number}: bad escape \\{escaped}{digits}"))
                };
                out.push(match escaped {
                    'n' => '\n',
                    't' | '\t' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'e' => '\u{1b}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    other => other, // `\"`, `\\`, `\/`, `\ `
                });
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Node {
        Node::Str(text.to_string())
    }

    #[test]
    fn mappings_sequences_and_scalars() {
        let doc = parse(
            "# comment\n---\na: 1\nb:\n  c: 'it''s'\n  d: \"x\\ty \\\"q\\\" \\u00e9\"\nlist:\n- name: one\n  extra: {}\n- name: two # trailing\n-   plain item\nempty: []\nnothing:\n",
        )
        .unwrap();
        assert_eq!(doc.get("a"), Some(&s("1")));
        assert_eq!(doc.get("b").and_then(|b| b.get("c")), Some(&s("it's")));
        assert_eq!(
            doc.get("b").and_then(|b| b.get("d")),
            Some(&s("x\ty \"q\" é"))
        );
        let list = doc.get("list").unwrap().items();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].get("name"), Some(&s("one")));
        assert_eq!(list[0].get("extra"), Some(&Node::Map(BTreeMap::new())));
        assert_eq!(list[1].get("name"), Some(&s("two")));
        assert_eq!(list[2], s("plain item"));
        assert_eq!(doc.get("empty"), Some(&Node::Seq(Vec::new())));
        assert_eq!(doc.get("nothing"), Some(&Node::Null));
    }

    #[test]
    fn indented_sequences() {
        let doc = parse("items:\n  - a: 1\n    b: 2\n  - a: 3\n").unwrap();
        let items = doc.get("items").unwrap().items();
        assert_eq!(items[1].get("a"), Some(&s("3")));
        assert_eq!(items[0].get("b"), Some(&s("2")));
    }

    #[test]
    fn block_scalars() {
        let doc = parse(
            "lit: |-\n  one\n    two\n\n  three\nkeep: |+\n  x\n\nfold: >-\n  abc\n  def\n\n  ghi\nclip: |\n  a\n\n\nnext: 1\n",
        )
        .unwrap();
        assert_eq!(doc.get("lit"), Some(&s("one\n  two\n\nthree")));
        assert_eq!(doc.get("keep"), Some(&s("x\n\n")));
        assert_eq!(doc.get("fold"), Some(&s("abc def\nghi")));
        assert_eq!(doc.get("clip"), Some(&s("a\n")));
        assert_eq!(doc.get("next"), Some(&s("1")));
    }

    #[test]
    fn keys_with_colons_and_quotes() {
        let doc =
            parse("\"a: b\": x\nurl: https://h:6443/p\n'k''q': \"v # not a comment\"\n").unwrap();
        assert_eq!(doc.get("a: b"), Some(&s("x")));
        assert_eq!(doc.get("url"), Some(&s("https://h:6443/p")));
        assert_eq!(doc.get("k'q"), Some(&s("v # not a comment")));
    }

    #[test]
    fn json_documents() {
        let doc = parse(r#"{"a": {"b": ["x", 1]}}"#).unwrap();
        assert_eq!(doc.get("a").unwrap().get("b").unwrap().items()[1], s("1"));
    }

    #[test]
    fn unsupported_yaml_names_the_line() {
        let err = parse("a: 1\nb: &anchor x\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse("a: 1\n   b: 2\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = parse("a: \"open\n").unwrap_err();
        assert!(err.contains("unterminated"), "{err}");
    }
}
