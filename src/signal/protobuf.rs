//! The protobuf subset libsignal's two ciphertext messages use: `uint32` and `bytes` fields.
//!
//! Hand-written instead of prost (with `bytes`): about 3 KB less gzipped wasm for some 100
//! lines. Decoding follows prost's rules, which official libsignal uses: fields in any order,
//! the last occurrence of a field wins, unknown fields are skipped, a known field with the
//! wrong wire type is an error, a `uint32` keeps the low 32 bits of its varint. A test holds
//! it to prost on generated and corrupted messages.

use crate::prelude::*;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;
/// prost's limit on nested groups in skipped fields.
const MAX_DEPTH: u32 = 100;

/// Appends protobuf fields.
pub(crate) struct ProtoWriter(Vec<u8>);

impl ProtoWriter {
    /// Writes into `out` (after what it already holds, e.g. a version byte).
    pub(crate) fn new(out: Vec<u8>) -> Self {
        Self(out)
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire_type)));
    }

    /// A `uint32` field, if present.
    pub(crate) fn uint32(&mut self, field: u32, value: Option<u32>) {
        if let Some(v) = value {
            self.tag(field, VARINT);
            self.varint(u64::from(v));
        }
    }

    /// A `bytes` field.
    pub(crate) fn bytes(&mut self, field: u32, value: &[u8]) {
        self.tag(field, LEN);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// One decoded field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Why a protobuf body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.0.split_first().ok_or(Malformed)?;
            self.0 = rest;
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(Malformed);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.0.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl Cursor<'_> {
    /// A field key: its number (≥ 1, and the key within 32 bits) and wire type.
    fn key(&mut self) -> Result<(u32, u8), Malformed> {
        let key = u32::try_from(self.varint()?).map_err(|_| Malformed)?;
        let number = key >> 3;
        if number == 0 {
            return Err(Malformed);
        }
        Ok((number, (key & 7) as u8))
    }

    /// Skips the value of an unknown field (a group with everything up to its end).
    fn skip(&mut self, number: u32, wire_type: u8, depth: u32) -> Result<(), Malformed> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                self.take(len).map(drop)
            }
            START_GROUP if depth < MAX_DEPTH => loop {
                let (inner, inner_type) = self.key()?;
                if inner_type == END_GROUP {
                    return if inner == number {
                        Ok(())
                    } else {
                        Err(Malformed)
                    };
                }
                self.skip(inner, inner_type, depth + 1)?;
            },
            _ => Err(Malformed),
        }
    }
}

/// Calls `field(number, value)` for each field of `body`, in order. `known(number)` says
/// whether a field is one of the message's, and then whether it is `bytes` (else a varint);
/// other fields are skipped, and a known field with the wrong wire type is refused.
pub(crate) fn read<'a>(
    body: &'a [u8],
    known: impl Fn(u32) -> Option<bool>,
    mut field: impl FnMut(u32, Value<'a>),
) -> Result<(), Malformed> {
    let mut c = Cursor(body);
    while !c.0.is_empty() {
        let (number, wire_type) = c.key()?;
        match known(number) {
            None => c.skip(number, wire_type, 0)?,
            Some(true) if wire_type == LEN => {
                let len = usize::try_from(c.varint()?).map_err(|_| Malformed)?;
                field(number, Value::Bytes(c.take(len)?));
            }
            Some(false) if wire_type == VARINT => field(number, Value::Varint(c.varint()?)),
            Some(_) => return Err(Malformed),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// libsignal's PreKeySignalMessage as prost declares it (fields 1–8, both kinds).
    #[derive(Clone, PartialEq, Message)]
    struct Reference {
        #[prost(uint32, optional, tag = "1")]
        a: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "2")]
        b: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "3")]
        c: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "4")]
        d: Option<Vec<u8>>,
        #[prost(uint32, optional, tag = "5")]
        e: Option<u32>,
        #[prost(uint32, optional, tag = "6")]
        f: Option<u32>,
        #[prost(uint32, optional, tag = "7")]
        g: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "8")]
        h: Option<Vec<u8>>,
    }

    fn ours(body: &[u8]) -> Result<Reference, Malformed> {
        let mut r = Reference::default();
        read(
            body,
            super::super::wire::prekey_message_field,
            |n, v| match (n, v) {
                (1, Value::Varint(x)) => r.a = Some(x as u32),
                (2, Value::Bytes(x)) => r.b = Some(x.to_vec()),
                (3, Value::Bytes(x)) => r.c = Some(x.to_vec()),
                (4, Value::Bytes(x)) => r.d = Some(x.to_vec()),
                (5, Value::Varint(x)) => r.e = Some(x as u32),
                (6, Value::Varint(x)) => r.f = Some(x as u32),
                (7, Value::Varint(x)) => r.g = Some(x as u32),
                (8, Value::Bytes(x)) => r.h = Some(x.to_vec()),
                _ => {}
            },
        )?;
        Ok(r)
    }

    fn same_as_prost(body: &[u8]) {
        let theirs = Reference::decode(body).ok();
        assert_eq!(ours(body).ok(), theirs, "{body:02x?}");
    }

    /// A message of random fields: known ones (sometimes with the wrong wire type, sometimes
    /// twice), unknown ones of every wire type, groups, huge varints.
    fn random_message(rng: &mut StdRng) -> Vec<u8> {
        let mut w = ProtoWriter::new(Vec::new());
        for _ in 0..rng.gen_range(0..8) {
            let number = rng.gen_range(1..10u32);
            let wire_type = [VARINT, LEN, FIXED32, FIXED64, START_GROUP][rng.gen_range(0..5)];
            w.tag(number, wire_type);
            match wire_type {
                VARINT => w.varint(if rng.gen() {
                    rng.gen()
                } else {
                    rng.gen_range(0..300)
                }),
                LEN => {
                    let len = rng.gen_range(0..40);
                    w.varint(len);
                    w.0.extend((0..len).map(|_| rng.gen::<u8>()));
                }
                FIXED32 => w.0.extend([1, 2, 3, 4]),
                FIXED64 => w.0.extend([1, 2, 3, 4, 5, 6, 7, 8]),
                _ => {
                    w.uint32(20, Some(rng.gen()));
                    w.tag(number, END_GROUP);
                }
            }
        }
        w.finish()
    }

    #[test]
    fn decodes_exactly_as_prost_does() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..3_000 {
            let message = random_message(&mut rng);
            same_as_prost(&message);
            for cut in 0..message.len() {
                same_as_prost(&message[..cut]);
            }
            for bit in 0..message.len() * 8 {
                let mut flipped = message.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                same_as_prost(&flipped);
            }
        }
        for _ in 0..20_000 {
            let junk: Vec<u8> = (0..rng.gen_range(0..24)).map(|_| rng.gen()).collect();
            same_as_prost(&junk);
        }
    }

    #[test]
    fn encodes_exactly_as_prost_does() {
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..2_000 {
            let r = Reference {
                a: rng.gen::<bool>().then(|| rng.gen()),
                b: Some((0..rng.gen_range(0..40)).map(|_| rng.gen()).collect()),
                c: Some(vec![5; 33]),
                d: Some((0..rng.gen_range(0..200)).map(|_| rng.gen()).collect()),
                e: Some(rng.gen()),
                f: Some(rng.gen_range(0..3)),
                g: rng.gen::<bool>().then(|| rng.gen()),
                h: None,
            };
            let mut w = ProtoWriter::new(Vec::new());
            w.uint32(1, r.a);
            w.bytes(2, r.b.as_deref().unwrap_or_default());
            w.bytes(3, r.c.as_deref().unwrap_or_default());
            w.bytes(4, r.d.as_deref().unwrap_or_default());
            w.uint32(5, r.e);
            w.uint32(6, r.f);
            w.uint32(7, r.g);
            assert_eq!(w.finish(), r.encode_to_vec());
        }
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut w = ProtoWriter::new(Vec::new());
            w.varint(v);
            let bytes = w.finish();
            assert_eq!(Cursor(&bytes).varint(), Ok(v));
        }
        assert_eq!(Cursor(&[0x80; 11]).varint(), Err(Malformed));
        assert_eq!(
            Cursor(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).varint(),
            Err(Malformed)
        );
        assert_eq!(Cursor(&[0x80]).varint(), Err(Malformed));
    }
}
