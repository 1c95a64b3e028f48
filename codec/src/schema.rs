//! Schema fingerprints: a compile-time hash of a type's structure.
//!
//! [`Schema::FINGERPRINT`] is a 64-bit FNV-1a hash computed in a `const`
//! context. Primitives and standard containers hash a fixed tag plus the
//! fingerprints of their parameters; `#[derive(Schema)]` and
//! `#[derive(Message)]` hash the item kind, each field's name (or position)
//! and each field type's fingerprint in declaration order, so the hash is
//! recursive over nesting. See the crate README for the full list of changes
//! that alter a fingerprint.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A type whose structure has a stable 64-bit fingerprint.
///
/// Two programs that compute different fingerprints for a type disagree on
/// its wire shape. Implemented here for primitives and the standard
/// containers rkyv can archive; derive it for your own types with
/// `#[derive(Schema)]` (nested types) or `#[derive(Message)]` (messages).
///
/// Recursive types (a type containing itself, e.g. through `Vec<Self>`) are
/// not supported: the constant would depend on itself and fails to compile.
pub trait Schema {
    /// The fingerprint of this type's structure.
    const FINGERPRINT: u64;
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A `const` FNV-1a hasher used to build fingerprints.
///
/// Every value is length- or width-delimited, so distinct sequences of
/// calls cannot collide by concatenation.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct SchemaHasher {
    state: u64,
}

impl Default for SchemaHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaHasher {
    /// A hasher in its initial state.
    pub const fn new() -> Self {
        Self { state: FNV_OFFSET }
    }

    /// Feeds raw bytes.
    pub const fn bytes(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        while i < bytes.len() {
            self.state ^= bytes[i] as u64;
            self.state = self.state.wrapping_mul(FNV_PRIME);
            i += 1;
        }
        self
    }

    /// Feeds a `u64` as 8 little-endian bytes.
    pub const fn u64(self, value: u64) -> Self {
        self.bytes(&value.to_le_bytes())
    }

    /// Feeds a string, prefixed by its length.
    pub const fn str(self, value: &str) -> Self {
        self.u64(value.len() as u64).bytes(value.as_bytes())
    }

    /// The final hash.
    pub const fn finish(self) -> u64 {
        self.state
    }
}

const fn tag(name: &str) -> SchemaHasher {
    SchemaHasher::new().str(name)
}

macro_rules! leaf {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl Schema for $ty {
            const FINGERPRINT: u64 = tag($name).finish();
        })*
    };
}

leaf! {
    () => "()", bool => "bool", char => "char",
    u8 => "u8", u16 => "u16", u32 => "u32", u64 => "u64", u128 => "u128", usize => "usize",
    i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", i128 => "i128", isize => "isize",
    f32 => "f32", f64 => "f64",
    str => "str", String => "String",
    std::time::Duration => "Duration",
}

macro_rules! wrapper {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(impl<T: Schema + ?Sized> Schema for $ty<T> {
            const FINGERPRINT: u64 = tag($name).u64(T::FINGERPRINT).finish();
        })*
    };
}

wrapper! { Box => "Box" }

macro_rules! sized_wrapper {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(impl<T: Schema> Schema for $ty<T> {
            const FINGERPRINT: u64 = tag($name).u64(T::FINGERPRINT).finish();
        })*
    };
}

sized_wrapper! {
    Vec => "Vec", Option => "Option", BTreeSet => "BTreeSet", HashSet => "HashSet",
}

impl<T: Schema> Schema for [T] {
    const FINGERPRINT: u64 = tag("slice").u64(T::FINGERPRINT).finish();
}

impl<T: Schema, const N: usize> Schema for [T; N] {
    const FINGERPRINT: u64 = tag("array").u64(N as u64).u64(T::FINGERPRINT).finish();
}

impl<T: Schema, E: Schema> Schema for Result<T, E> {
    const FINGERPRINT: u64 = tag("Result")
        .u64(T::FINGERPRINT)
        .u64(E::FINGERPRINT)
        .finish();
}

impl<K: Schema, V: Schema> Schema for HashMap<K, V> {
    const FINGERPRINT: u64 = tag("HashMap")
        .u64(K::FINGERPRINT)
        .u64(V::FINGERPRINT)
        .finish();
}

impl<K: Schema, V: Schema> Schema for BTreeMap<K, V> {
    const FINGERPRINT: u64 = tag("BTreeMap")
        .u64(K::FINGERPRINT)
        .u64(V::FINGERPRINT)
        .finish();
}

macro_rules! tuple {
    ($($name:ident)+) => {
        impl<$($name: Schema),+> Schema for ($($name,)+) {
            const FINGERPRINT: u64 = {
                let h = tag("tuple");
                $(let h = h.u64($name::FINGERPRINT);)+
                h.finish()
            };
        }
    };
}

tuple!(A);
tuple!(A B);
tuple!(A B C);
tuple!(A B C D);
tuple!(A B C D E);
tuple!(A B C D E F);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_primitives() {
        let all = [
            u8::FINGERPRINT,
            i8::FINGERPRINT,
            u16::FINGERPRINT,
            u32::FINGERPRINT,
            f32::FINGERPRINT,
            String::FINGERPRINT,
            <Vec<u8>>::FINGERPRINT,
            <Vec<u16>>::FINGERPRINT,
            <Option<u8>>::FINGERPRINT,
            <[u8; 4]>::FINGERPRINT,
            <[u8; 5]>::FINGERPRINT,
            <(u8, u16)>::FINGERPRINT,
            <(u16, u8)>::FINGERPRINT,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn strings_are_length_delimited() {
        let a = SchemaHasher::new().str("ab").str("c").finish();
        let b = SchemaHasher::new().str("a").str("bc").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn fnv_reference_value() {
        // FNV-1a 64 of "a" is a published test vector.
        assert_eq!(
            SchemaHasher::new().bytes(b"a").finish(),
            0xaf63_dc4c_8601_ec8c
        );
    }
}
