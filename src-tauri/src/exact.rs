//! Integers cross to the web view exactly. A JavaScript number is exact only below 2^53, and
//! micro-credits pass that at 9 billion credits (a large team's ledger, an admin grant).
//! Every 64- and 128-bit integer in what a command returns is therefore sent as a decimal
//! string, and the generated TypeScript types say `string` for them (`ipc::export_types`
//! uses ts-rs's `with_large_int("string")`, which covers exactly these types). The UI turns
//! them into `BigInt` (ui/src/lib/money.ts); no float ever holds an amount. Smaller integers
//! (counts, months, `u32`) stay numbers.
//!
//! `Exact(value)` serialises `value` through a serializer that changes only that: the same
//! types that serde's JSON would write, with `i64`/`u64`/`i128`/`u128` as strings. serde
//! writes a `usize` as a `u64` (a string here) while ts-rs declares it `number`: IPC types
//! use `u32` or `u64`, never `usize`.

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// A command's result with its large integers as strings.
#[derive(Debug)]
pub struct Exact<T>(pub T);

impl<T: Serialize> Serialize for Exact<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Strings(s))
    }
}

/// A borrowed value serialised the same way (the fields and elements of a compound).
struct Inner<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Inner<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Strings(s))
    }
}

struct Strings<S>(S);

/// A compound (struct, sequence, map…) whose parts are serialised through `Inner`.
struct Parts<C>(C);

macro_rules! same {
    ($($f:ident($t:ty)),* $(,)?) => {
        $(fn $f(self, v: $t) -> Result<Self::Ok, Self::Error> { self.0.$f(v) })*
    };
}

macro_rules! as_string {
    ($($f:ident($t:ty)),* $(,)?) => {
        $(fn $f(self, v: $t) -> Result<Self::Ok, Self::Error> { self.0.collect_str(&v) })*
    };
}

impl<S: Serializer> Serializer for Strings<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Parts<S::SerializeSeq>;
    type SerializeTuple = Parts<S::SerializeTuple>;
    type SerializeTupleStruct = Parts<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Parts<S::SerializeTupleVariant>;
    type SerializeMap = Parts<S::SerializeMap>;
    type SerializeStruct = Parts<S::SerializeStruct>;
    type SerializeStructVariant = Parts<S::SerializeStructVariant>;

    same! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_str(&str), serialize_bytes(&[u8]),
    }
    as_string! {
        serialize_i64(i64), serialize_u64(u64), serialize_i128(i128), serialize_u128(u128),
    }

    fn serialize_none(self) -> Result<Self::Ok, Self::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Self::Ok, Self::Error> {
        self.0.serialize_some(&Inner(v))
    }
    fn serialize_unit(self) -> Result<Self::Ok, Self::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Self::Ok, Self::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, Self::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<Self::Ok, Self::Error> {
        self.0.serialize_newtype_struct(name, &Inner(v))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Self::Ok, Self::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Inner(v))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        self.0.serialize_seq(len).map(Parts)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        self.0.serialize_tuple(len).map(Parts)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        self.0.serialize_tuple_struct(name, len).map(Parts)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Parts)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        self.0.serialize_map(len).map(Parts)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        self.0.serialize_struct(name, len).map(Parts)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Parts)
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<C: SerializeSeq> SerializeSeq for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_element(&Inner(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeTuple> SerializeTuple for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_element(&Inner(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeTupleStruct> SerializeTupleStruct for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(&Inner(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeTupleVariant> SerializeTupleVariant for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(&Inner(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeMap> SerializeMap for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Inner(k))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Inner(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeStruct> SerializeStruct for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), C::Error> {
        self.0.serialize_field(key, &Inner(v))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeStructVariant> SerializeStructVariant for Parts<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), C::Error> {
        self.0.serialize_field(key, &Inner(v))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

/// An amount the UI sends back (a threshold, a custom purchase in cents): the decimal
/// string the types declare, or a plain JSON integer.
pub mod input {
    use serde::{Deserialize, Deserializer};

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(n),
            Either::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a whole number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Exact;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Row {
        big: i64,
        seq: u64,
        count: u32,
        small: i32,
        maybe: Option<i64>,
        list: Vec<i64>,
        name: &'static str,
        nested: Inner,
        map: BTreeMap<String, i64>,
        variant: Choice,
    }

    #[derive(Serialize)]
    struct Inner {
        value: i64,
        ratio: f64,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Choice {
        CustomCents(i64),
    }

    #[test]
    fn large_integers_become_strings_and_nothing_else_changes() {
        let row = Row {
            big: 9_007_199_759_740_993,
            seq: u64::MAX,
            count: 7,
            small: -3,
            maybe: Some(-(1 << 60)),
            list: vec![1, i64::MIN],
            name: "x",
            nested: Inner {
                value: 42,
                ratio: 0.5,
            },
            map: BTreeMap::from([("a".to_owned(), 5)]),
            variant: Choice::CustomCents(2500),
        };
        assert_eq!(
            serde_json::to_value(Exact(&row)).unwrap(),
            serde_json::json!({
                "big": "9007199759740993", "seq": "18446744073709551615", "count": 7,
                "small": -3, "maybe": "-1152921504606846976",
                "list": ["1", "-9223372036854775808"], "name": "x",
                "nested": {"value": "42", "ratio": 0.5}, "map": {"a": "5"},
                "variant": {"custom_cents": "2500"}
            })
        );
    }

    #[test]
    fn amounts_come_back_as_strings_or_numbers() {
        #[derive(serde::Deserialize)]
        struct In {
            #[serde(deserialize_with = "super::input::i64")]
            v: i64,
        }
        let parse = |j: &str| serde_json::from_str::<In>(j).map(|i| i.v);
        assert_eq!(
            parse(r#"{"v": "9007199759740993"}"#).unwrap(),
            9_007_199_759_740_993
        );
        assert_eq!(parse(r#"{"v": 12}"#).unwrap(), 12);
        assert!(parse(r#"{"v": "12.5"}"#)
            .unwrap_err()
            .to_string()
            .contains("not a whole number"));
    }
}
