//! The SDK's JSON reader against serde_json: whatever ours accepts, serde_json reads to the
//! same value; whatever ours refuses, serde_json refuses too, or it is one of the things ours
//! refuses on purpose (duplicate keys, nesting deeper than `MAX_DEPTH`). Ours does not compute
//! the value of non-integer numbers, so it does not refuse those beyond f64's range.
#![no_main]

use std::collections::BTreeSet;
use std::fmt;

use libfuzzer_sys::fuzz_target;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use signal_guest_sdk::exchange::json::{self, Number, Value, MAX_DEPTH};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let theirs = serde_json::from_str::<serde_json::Value>(text);
    match json::parse(text) {
        Ok(ours) => match theirs {
            Ok(theirs) => assert!(same(&ours, &theirs), "{ours:?} != {theirs:?}"),
            Err(e) => assert!(
                e.to_string().starts_with("number out of range"),
                "ours accepted what serde_json refuses: {e}"
            ),
        },
        Err(_) => {
            if theirs.is_ok() {
                let shape = serde_json::from_str::<Shape>(text).expect("serde_json read it once");
                assert!(
                    shape.duplicate_keys || shape.depth > MAX_DEPTH,
                    "ours refused valid JSON: {text:?}"
                );
            }
        }
    }
});

fn same(ours: &Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (ours, theirs) {
        (Value::Null, J::Null) => true,
        (Value::Bool(a), J::Bool(b)) => a == b,
        (Value::String(a), J::String(b)) => a == b,
        (Value::Number(Number::U64(a)), J::Number(b)) => {
            b.as_u64() == Some(*a) || (*a == 0 && b.as_f64() == Some(0.0))
        }
        (Value::Number(Number::I64(a)), J::Number(b)) => b.as_i64() == Some(*a),
        (Value::Number(Number::Other), J::Number(b)) => b.is_f64(),
        (Value::Array(a), J::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), J::Object(b)) => {
            a.keys().count() == b.len()
                && b.iter().all(|(k, y)| a.get(k).is_some_and(|x| same(x, y)))
        }
        _ => false,
    }
}

/// What serde_json's own value type hides: repeated keys and the nesting depth.
#[derive(Default)]
struct Shape {
    depth: usize,
    duplicate_keys: bool,
}

impl Shape {
    fn nest(mut self, inner: Shape) -> Self {
        self.depth = self.depth.max(inner.depth + 1);
        self.duplicate_keys |= inner.duplicate_keys;
        self
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut shape = Shape {
            depth: 1,
            duplicate_keys: false,
        };
        while let Some(item) = seq.next_element::<Shape>()? {
            shape = shape.nest(item);
        }
        Ok(shape)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut shape = Shape {
            depth: 1,
            duplicate_keys: false,
        };
        let mut keys = BTreeSet::new();
        while let Some((key, value)) = map.next_entry::<String, Shape>()? {
            shape.duplicate_keys |= !keys.insert(key);
            shape = shape.nest(value);
        }
        Ok(shape)
    }
}
