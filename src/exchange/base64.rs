//! Standard base64 with padding (RFC 4648 §4), strict, and constant-time in the bytes it
//! carries: the meeting key and private-key-adjacent material travel through it.
//!
//! By hand rather than `base64ct` (whose technique it follows: character classes by
//! arithmetic masks, no table lookups, no branches on data) because `base64ct`'s generic
//! alphabet machinery cost 1.2 KB of gzipped wasm for the one alphabet the contract uses.
//! Tests hold it to `base64ct` on every length and on malformed input.

use crate::prelude::*;

/// The character for a 6-bit value, without branches or lookups.
fn encode_sextet(v: u8) -> u8 {
    let v = i16::from(v);
    let mut c = v + i16::from(b'A');
    c += ((25 - v) >> 8) & 6; // 26.. → 'a'..
    c -= ((51 - v) >> 8) & 75; // 52.. → '0'..
    c -= ((61 - v) >> 8) & 15; // 62 → '+'
    c += ((62 - v) >> 8) & 3; // 63 → '/'
    c as u8
}

/// The 6-bit value of a character, or -1, without branches or lookups.
fn decode_char(c: u8) -> i16 {
    let c = i16::from(c);
    let within = |low: i16, high: i16| ((low - 1 - c) & (c - high - 1)) >> 8;
    -1 + (within(0x41, 0x5a) & (c - 64)) // A–Z → 0..25
        + (within(0x61, 0x7a) & (c - 70)) // a–z → 26..51
        + (within(0x30, 0x39) & (c + 5)) // 0–9 → 52..61
        + (within(0x2b, 0x2b) & 63) // + → 62
        + (within(0x2f, 0x2f) & 64) // / → 63
}

/// Encodes `bytes`.
pub(super) fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let sextets = [
            b[0] >> 2,
            (b[0] << 4 | b[1] >> 4) & 63,
            (b[1] << 2 | b[2] >> 6) & 63,
            b[2] & 63,
        ];
        for (i, s) in sextets.into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                encode_sextet(s)
            } else {
                b'='
            });
        }
    }
    // Every byte pushed is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes `text`: whole 4-character groups, `=` only as one or two final characters, and
/// the bits padding leaves unused all zero (so that each byte string has one encoding).
pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 != 0 {
        return None;
    }
    let padding = text
        .iter()
        .rev()
        .take(2)
        .take_while(|&&c| c == b'=')
        .count();
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut invalid = 0i16;
    let last = text.len() / 4;
    for (n, group) in text.chunks(4).enumerate() {
        let pad = if n + 1 == last { padding } else { 0 };
        let mut acc = 0u32;
        for (i, &c) in group.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { decode_char(c) };
            invalid |= v;
            acc = acc << 6 | (v & 63) as u32;
        }
        let bytes = acc.to_be_bytes();
        // The bits the padding leaves unused must be zero.
        invalid |= -i16::from(acc & ((1 << (8 * pad)) - 1) != 0);
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    (invalid >= 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64, Encoding};

    #[test]
    fn equals_base64ct_on_every_length_and_byte() {
        for len in 0..100usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 89 + len * 7) as u8).collect();
            let ours = encode(&bytes);
            assert_eq!(ours, Base64::encode_string(&bytes));
            assert_eq!(decode(&ours).unwrap(), bytes);
        }
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(encode(&all), Base64::encode_string(&all));
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }

    #[test]
    fn refuses_what_base64ct_refuses() {
        for bad in [
            "A", "AB", "ABC", "A===", "AB=A", "=AAA", "AA=A", "AB==AAAA", "AB\n=", "AB C", "AB-_",
            "ABC=====", "ABD=", "AB==", "AR==", "AQ==", "ABC\0", "ÄBCD",
        ] {
            assert_eq!(
                decode(bad).is_some(),
                Base64::decode_vec(bad).is_ok(),
                "{bad:?}"
            );
        }
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn agrees_with_base64ct_on_every_group_of_edge_characters() {
        // Characters at the class edges, the padding character, and one outside.
        let chars = b"AZaz09+/=Qw-";
        for a in chars {
            for b in chars {
                for c in chars {
                    for d in chars {
                        for prefix in ["", "AAAA"] {
                            let text = format!(
                                "{prefix}{}",
                                String::from_utf8(vec![*a, *b, *c, *d]).unwrap()
                            );
                            assert_eq!(decode(&text), Base64::decode_vec(&text).ok(), "{text:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_character_decodes_as_base64ct_says() {
        for c in 0..=255u8 {
            let text = [b'A', b'A', b'A', c];
            let ours = core::str::from_utf8(&text).ok().and_then(decode);
            let theirs = core::str::from_utf8(&text)
                .ok()
                .and_then(|t| Base64::decode_vec(t).ok());
            assert_eq!(ours, theirs, "{c:#04x}");
        }
    }
}
