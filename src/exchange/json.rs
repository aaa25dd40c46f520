//! Strict JSON (RFC 8259) for the exchange's few small messages: a reader into a [`Value`]
//! tree and a writer for flat objects.
//!
//! Written here rather than taken from serde_json or miniserde: those cost the wasm module
//! several KB that the size budget does not have, for features these messages never use.
//! The reader refuses what a lenient one would guess at: duplicate keys, lone surrogates,
//! raw control characters, trailing bytes, nesting deeper than [`MAX_DEPTH`], objects with
//! more than [`MAX_MEMBERS`] members.

use crate::prelude::*;

use zeroize::{Zeroize, Zeroizing};

/// Deep enough for every message of the contract (three levels), shallow enough that a
/// hostile body cannot exhaust the stack.
pub const MAX_DEPTH: usize = 16;

/// The most members one object may have. The messages of both dialects have at most about
/// a dozen; the bound keeps the duplicate-key check (each key against the ones before it)
/// linear in the body's size: a hostile body with thousands of keys in one object would
/// otherwise cost the square of that (6,000 keys: 0.1–0.2 s of main thread).
pub const MAX_MEMBERS: usize = 32;

/// One parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, classified by [`Number`].
    Number(Number),
    /// A string, its escapes decoded.
    String(String),
    /// An array, items in document order.
    Array(Vec<Value>),
    /// An object.
    Object(Object),
}

/// The exchange reads integers only; other numbers are recognised and kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// A non-negative integer (or `-0`) that fits in 64 bits.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// A fraction, an exponent, or an integer too large for 64 bits.
    Other,
}

/// Members in document order; keys are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object(Vec<(String, Value)>);

impl Object {
    /// The value of member `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of member `key`, mutably (to take a secret out of the tree).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The member names, in document order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// The body is not JSON, or is JSON this reader refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

/// Parses one JSON text (surrounding whitespace allowed, nothing else after it).
pub fn parse(text: &str) -> Result<Value, NotJson> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.at == reader.bytes.len() {
        Ok(value)
    } else {
        Err(NotJson)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, NotJson> {
        let byte = self.peek().ok_or(NotJson)?;
        self.at += 1;
        Ok(byte)
    }

    fn expect(&mut self, byte: u8) -> Result<(), NotJson> {
        if self.next()? == byte {
            Ok(())
        } else {
            Err(NotJson)
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, NotJson> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(NotJson)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, NotJson> {
        self.skip_whitespace();
        match self.peek().ok_or(NotJson)? {
            b'{' if depth < MAX_DEPTH => self.object(depth + 1),
            b'[' if depth < MAX_DEPTH => self.array(depth + 1),
            b'"' => self.string().map(Value::String),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => Err(NotJson),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, NotJson> {
        self.expect(b'{')?;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(Object(members)));
        }
        loop {
            self.skip_whitespace();
            let key = self.string()?;
            if members.len() == MAX_MEMBERS || members.iter().any(|(k, _)| *k == key) {
                return Err(NotJson);
            }
            self.skip_whitespace();
            self.expect(b':')?;
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_whitespace();
            match self.next()? {
                b',' => continue,
                b'}' => return Ok(Value::Object(Object(members))),
                _ => return Err(NotJson),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, NotJson> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.next()? {
                b',' => continue,
                b']' => return Ok(Value::Array(items)),
                _ => return Err(NotJson),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Number, NotJson> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let count = self.digits();
        if count == 0 || (count > 1 && self.bytes[start] == b'0') {
            return Err(NotJson);
        }
        let integer_digits = &self.bytes[start..self.at];
        let mut whole = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(NotJson);
            }
            whole = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(NotJson);
            }
            whole = false;
        }
        if !whole {
            return Ok(Number::Other);
        }
        let magnitude = integer_digits.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        Ok(match (magnitude, negative) {
            (None, _) => Number::Other,
            (Some(n), false) => Number::U64(n),
            (Some(0), true) => Number::U64(0),
            (Some(n), true) => i64::try_from(n).map_or(Number::Other, |n| Number::I64(-n)),
        })
    }

    fn hex4(&mut self) -> Result<u32, NotJson> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = char::from(self.next()?).to_digit(16).ok_or(NotJson)?;
            code = code * 16 + digit;
        }
        Ok(code)
    }

    /// The raw length up to the closing quote: an upper bound of the decoded length (every
    /// escape is at least as long as what it stands for).
    fn string_span(&self) -> usize {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let mut i = 0;
        while let Some(&b) = rest.get(i) {
            match b {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        i.min(rest.len())
    }

    /// Strings may be key material (the meeting key's base64), so the buffer is sized once
    /// (no reallocation leaves a copy behind) and wiped on every error path.
    fn string(&mut self) -> Result<String, NotJson> {
        self.expect(b'"')?;
        let mut out = Zeroizing::new(Vec::with_capacity(self.string_span()));
        loop {
            match self.next()? {
                b'"' => {
                    return String::from_utf8(core::mem::take(&mut *out)).map_err(|e| {
                        e.into_bytes().zeroize();
                        NotJson
                    })
                }
                b'\\' => {
                    let escaped = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(NotJson),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(escaped.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(NotJson),
                byte => out.push(byte),
            }
        }
    }

    /// After `\u`: one code point, joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, NotJson> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                self.expect(b'\\')?;
                self.expect(b'u')?;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(NotJson);
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            _ => first,
        };
        char::from_u32(code).ok_or(NotJson)
    }
}

/// Builds one JSON object, member by member.
pub struct ObjectWriter {
    out: String,
}

impl ObjectWriter {
    /// An empty object.
    pub fn new() -> Self {
        Self {
            out: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        write_string(&mut self.out, key);
        self.out.push(':');
    }

    /// Adds a string member, escaped as JSON requires.
    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        write_string(&mut self.out, value);
        self
    }

    /// Adds an unsigned integer member, in decimal.
    pub fn number(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        write_u64(&mut self.out, value);
        self
    }

    /// `value` must itself be JSON written by this module.
    pub fn json(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        self.out.push_str(value);
        self
    }

    /// Closes the object and returns its text.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

impl Default for ObjectWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// A JSON array of JSON texts written by this module.
pub fn array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

fn write_string(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\u{1f}' => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 15]));
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `value` in decimal to `out`.
pub fn write_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

/// `value` in decimal.
pub fn u64_to_string(value: u64) -> String {
    let mut out = String::new();
    write_u64(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Object {
        match parse(text) {
            Ok(Value::Object(o)) => o,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn reads_every_kind_of_value() {
        let o = object(
            r#" { "s": "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "n": 12, "neg": -7, "z": -0,
                 "f": 1.5, "e": 1e3, "big": 18446744073709551616, "t": true, "no": false,
                 "null": null, "a": [1, [], {}], "o": {"k": "v"} } "#,
        );
        assert_eq!(
            o.get("s"),
            Some(&Value::String(
                "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}".into()
            ))
        );
        assert_eq!(o.get("n"), Some(&Value::Number(Number::U64(12))));
        assert_eq!(o.get("neg"), Some(&Value::Number(Number::I64(-7))));
        assert_eq!(o.get("z"), Some(&Value::Number(Number::U64(0))));
        assert_eq!(o.get("f"), Some(&Value::Number(Number::Other)));
        assert_eq!(o.get("e"), Some(&Value::Number(Number::Other)));
        assert_eq!(o.get("big"), Some(&Value::Number(Number::Other)));
        assert_eq!(o.get("t"), Some(&Value::Bool(true)));
        assert_eq!(o.get("no"), Some(&Value::Bool(false)));
        assert_eq!(o.get("null"), Some(&Value::Null));
        assert!(matches!(o.get("a"), Some(Value::Array(a)) if a.len() == 3));
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            ["s", "n", "neg", "z", "f", "e", "big", "t", "no", "null", "a", "o"]
        );
        assert_eq!(
            parse("[18446744073709551615, -9223372036854775808]"),
            Ok(Value::Array(vec![
                Value::Number(Number::U64(u64::MAX)),
                Value::Number(Number::Other),
            ]))
        );
    }

    #[test]
    fn refuses_what_is_not_strict_json() {
        for text in [
            "",
            " ",
            "{",
            "{}x",
            "{} {}",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\" 1}",
            "{a:1}",
            "{'a':1}",
            "{\"a\":1,\"a\":2}",
            "\"\u{1}\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"\\u12g4\"",
            "\"abc",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "NaN",
            "tru",
            "nul",
            "[true false]",
        ] {
            assert_eq!(parse(text), Err(NotJson), "{text:?}");
        }
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        let members = |n: usize| {
            let body: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", body.join(","))
        };
        assert!(parse(&members(MAX_MEMBERS)).is_ok());
        assert_eq!(parse(&members(MAX_MEMBERS + 1)), Err(NotJson));
        assert_eq!(parse(&format!("[{}]", members(6_000))), Err(NotJson));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        assert_eq!(parse(&deep(MAX_DEPTH + 1)), Err(NotJson));
        assert_eq!(parse(&deep(100_000)), Err(NotJson));
    }

    #[test]
    fn writes_what_it_reads_back() {
        let nasty = "q\"b\\s/\n\r\t\u{0}\u{1f}é😀";
        let inner = ObjectWriter::new().number("n", 7).finish();
        let text = ObjectWriter::new()
            .string("s", nasty)
            .number("max", u64::MAX)
            .number("zero", 0)
            .json("inner", &inner)
            .json("list", &array(&[inner.clone(), inner.clone()]))
            .finish();
        let o = object(&text);
        assert_eq!(o.get("s"), Some(&Value::String(nasty.into())));
        assert_eq!(o.get("max"), Some(&Value::Number(Number::U64(u64::MAX))));
        assert_eq!(o.get("zero"), Some(&Value::Number(Number::U64(0))));
        assert!(matches!(o.get("list"), Some(Value::Array(a)) if a.len() == 2));
        assert_eq!(ObjectWriter::new().finish(), "{}");
        assert_eq!(array(&[]), "[]");
        assert_eq!(u64_to_string(1_700_000_000_123), "1700000000123");
        // Agrees with an independent implementation.
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(theirs["s"], nasty);
        assert_eq!(theirs["max"], u64::MAX);
    }
}
