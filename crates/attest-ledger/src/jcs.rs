//! A direct RFC 8785 encoder for the shapes the ledger's entries take.
//!
//! It writes each value once into one buffer and sorts an object's members in
//! place when it closes, instead of buffering every member separately and
//! re-parsing its key as the general encoder does; that was most of the cost
//! of appending an entry. Whatever it does not handle itself (integers beyond
//! 2^53, non-finite floats, non-string map keys, duplicate keys, bytes, tuple
//! variants, a failing `Serialize`) it declines, and the caller falls back to
//! the general encoder, so the bytes are always those of
//! `serde_json_canonicalizer`.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The general encoder has to decide this value.
#[derive(Debug)]
pub(crate) struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the general canonical encoder")
    }
}

impl std::error::Error for Declined {}

impl ser::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

type Result<T> = std::result::Result<T, Declined>;

/// Largest integer magnitude whose ECMAScript form is its plain decimal
/// digits: every integer up to 2^53 is exact as a double, and below 10^21.
const EXACT_INTEGER_MAX: u128 = 1 << 53;

/// The canonical bytes of `value`, or `None` when the general encoder must decide.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    let mut encoder = Encoder::default();
    value.serialize(&mut encoder).ok()?;
    Some(encoder.out)
}

/// An object member written to the output: its unescaped key in `keys`, and
/// its `"key":value` bytes in `out`.
#[derive(Debug, Clone, Copy)]
struct Member {
    key_start: usize,
    key_end: usize,
    start: usize,
    end: usize,
}

#[derive(Debug, Default)]
struct Encoder {
    out: Vec<u8>,
    /// Unescaped keys of the members of the objects being written.
    keys: Vec<u8>,
    /// Members of the objects being written, innermost object last.
    members: Vec<Member>,
    /// Room to reorder an object's members.
    scratch: Vec<u8>,
}

impl Encoder {
    fn write_str(&mut self, s: &str) {
        write_escaped(&mut self.out, s);
    }

    fn write_integer(&mut self, negative: bool, magnitude: u128) -> Result<()> {
        if magnitude > EXACT_INTEGER_MAX {
            return Err(Declined);
        }
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = magnitude as u64;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative && magnitude != 0 {
            self.out.push(b'-');
        }
        self.out.extend_from_slice(&digits[i..]);
        Ok(())
    }

    fn write_float(&mut self, v: f64) -> Result<()> {
        if !v.is_finite() {
            return Err(Declined);
        }
        // ECMAScript number formatting, exactly as the general encoder does it.
        let bytes = serde_json_canonicalizer::to_vec(&v).map_err(|_| Declined)?;
        self.out.extend_from_slice(&bytes);
        Ok(())
    }

    fn begin_object(&mut self) -> Object {
        self.out.push(b'{');
        Object { members_start: self.members.len(), keys_start: self.keys.len(), body_start: self.out.len() }
    }

    /// Writes `"key":` for the next member of the innermost object.
    fn begin_member(&mut self, object: &Object, key: &str) -> (usize, usize, usize) {
        if self.out.len() > object.body_start {
            self.out.push(b',');
        }
        let start = self.out.len();
        let key_start = self.keys.len();
        self.keys.extend_from_slice(key.as_bytes());
        self.write_str(key);
        self.out.push(b':');
        (key_start, self.keys.len(), start)
    }

    fn end_member(&mut self, (key_start, key_end, start): (usize, usize, usize)) {
        self.members.push(Member { key_start, key_end, start, end: self.out.len() });
    }

    /// Closes an object, putting its members in RFC 8785 order (by the UTF-16
    /// code units of their keys) if they were written in another.
    fn end_object(&mut self, object: Object) -> Result<()> {
        let keys = &self.keys;
        let members = &mut self.members[object.members_start..];
        let key = |m: &Member| &keys[m.key_start..m.key_end];
        let mut sorted = true;
        for pair in members.windows(2) {
            match utf16_order(key(&pair[0]), key(&pair[1])) {
                Ordering::Less => {}
                Ordering::Equal => return Err(Declined),
                Ordering::Greater => sorted = false,
            }
        }
        if !sorted {
            members.sort_by(|a, b| utf16_order(key(a), key(b)));
            if members.windows(2).any(|pair| key(&pair[0]) == key(&pair[1])) {
                return Err(Declined);
            }
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.out[object.body_start..]);
            self.out.truncate(object.body_start);
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                let (start, end) = (m.start - object.body_start, m.end - object.body_start);
                self.out.extend_from_slice(&self.scratch[start..end]);
            }
        }
        self.members.truncate(object.members_start);
        self.keys.truncate(object.keys_start);
        self.out.push(b'}');
        Ok(())
    }
}

/// Orders two keys by their UTF-16 code units. UTF-8 byte order is code point
/// order, which differs from UTF-16 order only for characters beyond U+FFFF
/// (four-byte sequences, lead byte 0xF0 and up).
fn utf16_order(a: &[u8], b: &[u8]) -> Ordering {
    if a.iter().chain(b).all(|&byte| byte < 0xF0) {
        return a.cmp(b);
    }
    let as_str = |bytes| std::str::from_utf8(bytes).unwrap_or_default();
    as_str(a).encode_utf16().cmp(as_str(b).encode_utf16())
}

/// Writes a JSON string as RFC 8785 wants it: only `"`, `\` and control
/// characters escaped, with the short forms where JSON has them.
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x00..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..i]);
        plain_from = i + 1;
        if short.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

/// Where an open object starts in each of the encoder's buffers.
#[derive(Debug)]
struct Object {
    members_start: usize,
    keys_start: usize,
    body_start: usize,
}

impl<'e> ser::Serializer for &'e mut Encoder {
    type Ok = ();
    type Error = Declined;
    type SerializeSeq = Seq<'e>;
    type SerializeTuple = Seq<'e>;
    type SerializeTupleStruct = Seq<'e>;
    type SerializeTupleVariant = Impossible<(), Declined>;
    type SerializeMap = Map<'e>;
    type SerializeStruct = Map<'e>;
    type SerializeStructVariant = Map<'e>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<()> {
        self.write_integer(v < 0, u128::from(v.unsigned_abs()))
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        self.write_integer(v < 0, v.unsigned_abs())
    }

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.write_integer(false, u128::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        self.write_integer(false, v)
    }

    fn serialize_f32(self, v: f32) -> Result<()> {
        self.write_float(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<()> {
        self.write_float(v)
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.write_str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.write_str(v);
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(Declined)
    }

    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        let object = self.begin_object();
        let member = self.begin_member(&object, variant);
        value.serialize(&mut *self)?;
        self.end_member(member);
        self.end_object(object)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'e>> {
        self.out.push(b'[');
        Ok(Seq { encoder: self, first: true })
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq<'e>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'e>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Declined)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Map<'e>> {
        let object = self.begin_object();
        Ok(Map { encoder: self, object, key: None, variant: None })
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map<'e>> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> Result<Map<'e>> {
        // `{"variant":{...}}`: the outer object has one member, so it needs no sorting.
        let outer = self.begin_object();
        let member = self.begin_member(&outer, variant);
        let object = self.begin_object();
        Ok(Map { encoder: self, object, key: None, variant: Some((outer, member)) })
    }
}

#[derive(Debug)]
pub(crate) struct Seq<'e> {
    encoder: &'e mut Encoder,
    first: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if !self.first {
            self.encoder.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.encoder)
    }

    fn finish(self) -> Result<()> {
        self.encoder.out.push(b']');
        Ok(())
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

#[derive(Debug)]
pub(crate) struct Map<'e> {
    encoder: &'e mut Encoder,
    object: Object,
    /// The member whose key is written and whose value comes next.
    key: Option<(usize, usize, usize)>,
    /// For a struct variant, the one-member object around this one.
    variant: Option<(Object, (usize, usize, usize))>,
}

impl Map<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let member = self.encoder.begin_member(&self.object, key);
        value.serialize(&mut *self.encoder)?;
        self.encoder.end_member(member);
        Ok(())
    }

    fn finish(self) -> Result<()> {
        self.encoder.end_object(self.object)?;
        if let Some((outer, member)) = self.variant {
            self.encoder.end_member(member);
            self.encoder.end_object(outer)?;
        }
        Ok(())
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        let key = key.serialize(KeyName)?;
        self.key = Some(self.encoder.begin_member(&self.object, &key));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let member = self.key.take().ok_or(Declined)?;
        value.serialize(&mut *self.encoder)?;
        self.encoder.end_member(member);
        Ok(())
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Map<'_> {
    type Ok = ();
    type Error = Declined;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

/// Takes a map key that is a string; any other key is declined.
struct KeyName;

impl ser::Serializer for KeyName {
    type Ok = String;
    type Error = Declined;
    type SerializeSeq = Impossible<String, Declined>;
    type SerializeTuple = Impossible<String, Declined>;
    type SerializeTupleStruct = Impossible<String, Declined>;
    type SerializeTupleVariant = Impossible<String, Declined>;
    type SerializeMap = Impossible<String, Declined>;
    type SerializeStruct = Impossible<String, Declined>;
    type SerializeStructVariant = Impossible<String, Declined>;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_string())
    }

    fn serialize_bool(self, _: bool) -> Result<String> {
        Err(Declined)
    }

    fn serialize_i8(self, _: i8) -> Result<String> {
        Err(Declined)
    }

    fn serialize_i16(self, _: i16) -> Result<String> {
        Err(Declined)
    }

    fn serialize_i32(self, _: i32) -> Result<String> {
        Err(Declined)
    }

    fn serialize_i64(self, _: i64) -> Result<String> {
        Err(Declined)
    }

    fn serialize_u8(self, _: u8) -> Result<String> {
        Err(Declined)
    }

    fn serialize_u16(self, _: u16) -> Result<String> {
        Err(Declined)
    }

    fn serialize_u32(self, _: u32) -> Result<String> {
        Err(Declined)
    }

    fn serialize_u64(self, _: u64) -> Result<String> {
        Err(Declined)
    }

    fn serialize_f32(self, _: f32) -> Result<String> {
        Err(Declined)
    }

    fn serialize_f64(self, _: f64) -> Result<String> {
        Err(Declined)
    }

    fn serialize_char(self, _: char) -> Result<String> {
        Err(Declined)
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        Err(Declined)
    }

    fn serialize_none(self) -> Result<String> {
        Err(Declined)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String> {
        Err(Declined)
    }

    fn serialize_unit(self) -> Result<String> {
        Err(Declined)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        Err(Declined)
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<String> {
        Err(Declined)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Result<String> {
        Err(Declined)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(Declined)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(Declined)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(Declined)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct> {
        Err(Declined)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Declined)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(Declined)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(Declined)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Declined)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map as JsonMap, Value, json};

    use super::*;

    fn reference(v: &impl Serialize) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(v).expect("the general encoder encodes it")
    }

    /// Strings with what makes canonical JSON hard: escapes, controls, DEL,
    /// characters around U+E000 and beyond U+FFFF (whose UTF-16 order differs).
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => "[a-z_]",
                1 => prop::sample::select(vec!["\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1f}", "\u{7f}", "\u{8}", "\u{c}", "\r"])
                    .prop_map(String::from),
                1 => prop::sample::select(vec!["é", "€", "\u{e000}", "\u{ffff}", "\u{1f600}", "\u{10000}", "\u{10ffff}"])
                    .prop_map(String::from),
                1 => any::<char>().prop_map(String::from),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    fn number(exact_integers_only: bool) -> BoxedStrategy<Value> {
        let exact = (1i64 << 53) as f64;
        let small = prop_oneof![
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            (0u64..=(1u64 << 53)).prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            (-exact..exact).prop_map(Value::from),
            prop::sample::select(vec![0.1, -0.0, 1e21, 1e-7, 333_333_333.333_333_3, 5e-324, f64::MAX])
                .prop_map(Value::from),
        ];
        if exact_integers_only {
            small.boxed()
        } else {
            prop_oneof![small, any::<i64>().prop_map(Value::from), any::<u64>().prop_map(Value::from)].boxed()
        }
    }

    fn json_value(exact_integers_only: bool) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(exact_integers_only),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((text(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect::<JsonMap<_, _>>())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Within its range (integers up to 2^53) the encoder answers itself,
        /// with the general encoder's bytes.
        #[test]
        fn encodes_values_as_the_general_encoder_does(v in json_value(true)) {
            prop_assert_eq!(to_vec(&v), Some(reference(&v)));
        }

        /// Outside it, it declines rather than differ.
        #[test]
        fn never_differs_from_the_general_encoder(v in json_value(false)) {
            if let Some(bytes) = to_vec(&v) {
                prop_assert_eq!(bytes, reference(&v));
            }
        }
    }

    #[test]
    fn declines_what_only_the_general_encoder_decides() {
        assert!(to_vec(&json!([(1u64 << 53) + 1])).is_none(), "beyond 2^53");
        assert!(to_vec(&[f64::NAN]).is_none(), "non-finite");
        assert!(to_vec(&std::collections::BTreeMap::from([(1, 2)])).is_none(), "integer key");
        assert_eq!(to_vec(&json!([1u64 << 53])), Some(reference(&json!([1u64 << 53]))), "2^53 itself");
    }

    #[test]
    fn sorts_struct_fields_and_nested_objects() {
        #[derive(Serialize)]
        struct Shape {
            zeta: u32,
            alpha: Option<String>,
            #[serde(flatten)]
            inner: Inner,
        }
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Inner {
            Moved { to: String, b: Value },
        }
        let v = Shape {
            zeta: 7,
            alpha: None,
            inner: Inner::Moved { to: "x".into(), b: json!({"y": [1, {"b": 2, "a": 1}], "x": null}) },
        };
        assert_eq!(to_vec(&v), Some(reference(&v)));
        assert_eq!(
            String::from_utf8(reference(&v)).expect("utf-8"),
            r#"{"alpha":null,"b":{"x":null,"y":[1,{"a":1,"b":2}]},"to":"x","type":"moved","zeta":7}"#
        );
    }
}
