//! `#[derive(Message)]` and `#[derive(Schema)]` for `dndm-codec`.
//!
//! Use these through the re-exports in `dndm_codec` (`dndm_codec::Message`,
//! `dndm_codec::Schema`, or `dndm::Message` through the facade). The
//! generated code names `::dndm_codec` when the deriving crate depends on
//! `dndm-codec`, and `::dndm::codec` when it depends only on `dndm`.
//!
//! * `#[derive(Schema)]` implements `dndm_codec::Schema` from the type's
//!   structure: the kind of item, every field name (or position) in
//!   declaration order and every field type's own fingerprint, recursively.
//! * `#[derive(Message)]` implements `Schema` and `dndm_codec::Message`. It
//!   takes an optional `#[message(name = "robot.Imu", version = 2)]`
//!   attribute; the name defaults to the Rust identifier and the version
//!   to 1. The message fingerprint mixes the name and version into the
//!   structural fingerprint.
//!
//! Both derives work next to rkyv's `Archive`, `Serialize` and `Deserialize`
//! derives, which `Message` requires.

use proc_macro::TokenStream;
use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::quote;
use syn::{
    Data, DeriveInput, Fields, GenericParam, Generics, LitInt, LitStr, Type, WherePredicate,
    parse_macro_input, parse_quote,
};

/// Derives `dndm_codec::Schema` and `dndm_codec::Message`.
///
/// Attribute: `#[message(name = "pkg.Type", version = N)]`, both optional.
/// The name must be non-empty and may not contain `@` or whitespace (it is
/// used in routes `TypeName@path`).
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand_message(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Derives `dndm_codec::Schema` only, for types nested inside messages.
#[proc_macro_derive(Schema)]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand_schema(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

struct MessageAttrs {
    name: String,
    version: u32,
}

fn parse_attrs(input: &DeriveInput) -> syn::Result<MessageAttrs> {
    let mut name: Option<(String, Span)> = None;
    let mut version: Option<u32> = None;
    for attr in &input.attrs {
        if !attr.path().is_ident("message") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if name.is_some() {
                    return Err(meta.error("duplicate `name`"));
                }
                name = Some((lit.value(), lit.span()));
                Ok(())
            } else if meta.path.is_ident("version") {
                let lit: LitInt = meta.value()?.parse()?;
                if version.is_some() {
                    return Err(meta.error("duplicate `version`"));
                }
                version = Some(lit.base10_parse::<u32>()?);
                Ok(())
            } else {
                Err(meta.error("unknown message attribute; expected `name` or `version`"))
            }
        })?;
    }
    let name = match name {
        Some((value, span)) => {
            if value.is_empty() || value.contains('@') || value.chars().any(char::is_whitespace) {
                return Err(syn::Error::new(
                    span,
                    "message name must be non-empty and contain no `@` or whitespace",
                ));
            }
            value
        }
        None => input.ident.to_string(),
    };
    Ok(MessageAttrs {
        name,
        version: version.unwrap_or(1),
    })
}

/// Field types of the whole item, in declaration order.
fn field_types(data: &Data) -> Vec<&Type> {
    match data {
        Data::Struct(s) => s.fields.iter().map(|f| &f.ty).collect(),
        Data::Enum(e) => e
            .variants
            .iter()
            .flat_map(|v| v.fields.iter().map(|f| &f.ty))
            .collect(),
        Data::Union(_) => Vec::new(),
    }
}

/// Hashing statements for one field list, applied to a hasher named `h`.
/// The path of the codec crate as the deriving crate names it: `::dndm_codec`
/// when it depends on `dndm-codec` (possibly renamed), else `::dndm::codec`
/// through the facade, so users who depend only on `dndm` can derive too.
fn codec_path() -> TokenStream2 {
    use proc_macro_crate::{FoundCrate, crate_name};
    let ident = |name: &str| Ident::new(name, Span::call_site());
    match crate_name("dndm-codec") {
        Ok(FoundCrate::Name(name)) => {
            let name = ident(&name);
            return quote!(::#name);
        }
        Ok(FoundCrate::Itself) => return quote!(::dndm_codec),
        Err(_) => {}
    }
    match crate_name("dndm") {
        Ok(FoundCrate::Name(name)) => {
            let name = ident(&name);
            quote!(::#name::codec)
        }
        _ => quote!(::dndm_codec),
    }
}

fn fields_hash(fields: &Fields) -> TokenStream2 {
    let codec = codec_path();
    let (kind, count) = match fields {
        Fields::Named(n) => ("named", n.named.len()),
        Fields::Unnamed(u) => ("tuple", u.unnamed.len()),
        Fields::Unit => ("unit", 0),
    };
    let count = count as u64;
    let mut out = quote! { let h = h.str(#kind).u64(#count); };
    for (index, field) in fields.iter().enumerate() {
        let name = match &field.ident {
            Some(ident) => ident.to_string(),
            None => index.to_string(),
        };
        let ty = &field.ty;
        out.extend(quote! {
            let h = h.str(#name).u64(<#ty as #codec::Schema>::FINGERPRINT);
        });
    }
    out
}

/// An expression of type `SchemaHasher` over the item's structure.
fn structure_hash(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let codec = codec_path();
    let body = match &input.data {
        Data::Struct(s) => {
            let fields = fields_hash(&s.fields);
            quote! { let h = h.str("struct"); #fields }
        }
        Data::Enum(e) => {
            let count = e.variants.len() as u64;
            let mut out = quote! { let h = h.str("enum").u64(#count); };
            for variant in &e.variants {
                let name = variant.ident.to_string();
                let fields = fields_hash(&variant.fields);
                out.extend(quote! { let h = h.str(#name); #fields });
            }
            out
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "unions cannot derive Schema or Message",
            ));
        }
    };
    Ok(quote! {{
        let h = #codec::__private::SchemaHasher::new();
        #body
        h
    }})
}

fn has_type_params(generics: &Generics) -> bool {
    generics
        .params
        .iter()
        .any(|p| matches!(p, GenericParam::Type(_)))
}

/// Adds `FieldTy: Schema` for every field when the item is generic.
fn schema_bounds(input: &DeriveInput) -> Generics {
    let codec = codec_path();
    let mut generics = input.generics.clone();
    if has_type_params(&input.generics) {
        let where_clause = generics.make_where_clause();
        for ty in field_types(&input.data) {
            let pred: WherePredicate = parse_quote!(#ty: #codec::Schema);
            where_clause.predicates.push(pred);
        }
    }
    generics
}

fn expand_schema(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let codec = codec_path();
    let ident = &input.ident;
    let structure = structure_hash(input)?;
    let generics = schema_bounds(input);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #codec::Schema for #ident #ty_generics #where_clause {
            const FINGERPRINT: u64 = #structure.finish();
        }
    })
}

fn expand_message(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let codec = codec_path();
    let attrs = parse_attrs(input)?;
    let ident = &input.ident;
    let structure = structure_hash(input)?;
    let name = &attrs.name;
    let version = attrs.version;
    let version64 = u64::from(version);

    let schema_generics = schema_bounds(input);
    let (impl_generics, ty_generics, where_clause) = schema_generics.split_for_impl();
    let schema_impl = quote! {
        #[automatically_derived]
        impl #impl_generics #codec::Schema for #ident #ty_generics #where_clause {
            const FINGERPRINT: u64 = #codec::__private::SchemaHasher::new()
                .str("message")
                .str(#name)
                .u64(#version64)
                .u64(#structure.finish())
                .finish();
        }
    };

    let mut message_generics = schema_generics.clone();
    if has_type_params(&input.generics) {
        let where_clause = message_generics.make_where_clause();
        where_clause
            .predicates
            .push(parse_quote!(Self: #codec::__private::Encodable));
        // `Message: Sync`; a generic message is one when its parameters are.
        where_clause
            .predicates
            .push(parse_quote!(Self: ::core::marker::Sync));
        where_clause.predicates.push(parse_quote!(
            <Self as #codec::rkyv::Archive>::Archived:
                for<'__v> #codec::rkyv::bytecheck::CheckBytes<#codec::__private::Validator<'__v>>
                + #codec::rkyv::Deserialize<Self, #codec::__private::Deser>
        ));
    }
    let (impl_generics, ty_generics, where_clause) = message_generics.split_for_impl();
    let message_impl = quote! {
        #[automatically_derived]
        impl #impl_generics #codec::Message for #ident #ty_generics #where_clause {
            const TYPE_NAME: &'static str = #name;
            const VERSION: u32 = #version;

            fn __dndm_encode(
                &self,
                out: &mut #codec::rkyv::util::AlignedVec<16>,
                arena: &mut #codec::rkyv::ser::allocator::Arena,
            ) -> ::core::result::Result<(), #codec::rkyv::rancor::Error> {
                #codec::__private::encode(self, out, arena)
            }

            fn __dndm_access(
                bytes: &[u8],
            ) -> ::core::result::Result<
                &<Self as #codec::rkyv::Archive>::Archived,
                #codec::rkyv::rancor::Error,
            > {
                #codec::__private::access::<Self>(bytes)
            }

            fn __dndm_deserialize(
                archived: &<Self as #codec::rkyv::Archive>::Archived,
            ) -> ::core::result::Result<Self, #codec::rkyv::rancor::Error> {
                #codec::__private::deserialize::<Self>(archived)
            }
        }
    };
    Ok(quote! { #schema_impl #message_impl })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    fn attrs(src: &str) -> syn::Result<MessageAttrs> {
        let input: DeriveInput = syn::parse_str(src).unwrap();
        parse_attrs(&input)
    }

    #[test]
    fn defaults_to_ident_and_version_one() {
        let a = attrs("struct Imu { x: u8 }").unwrap();
        assert_eq!(a.name, "Imu");
        assert_eq!(a.version, 1);
    }

    #[test]
    fn reads_name_and_version() {
        let a = attrs(r#"#[message(name = "robot.Imu", version = 7)] struct Imu;"#).unwrap();
        assert_eq!(a.name, "robot.Imu");
        assert_eq!(a.version, 7);
    }

    #[test]
    fn rejects_bad_attributes() {
        for src in [
            r#"#[message(name = "a@b")] struct A;"#,
            r#"#[message(name = "")] struct A;"#,
            r#"#[message(name = "a b")] struct A;"#,
            r#"#[message(nmae = "a")] struct A;"#,
            r#"#[message(version = -1)] struct A;"#,
            r#"#[message(version = 1, version = 2)] struct A;"#,
        ] {
            assert!(attrs(src).is_err(), "{src} must be rejected");
        }
    }

    #[test]
    fn unions_are_rejected() {
        let input: DeriveInput = syn::parse_str("union U { a: u8, b: u16 }").unwrap();
        assert!(expand_message(&input).is_err());
        assert!(expand_schema(&input).is_err());
    }

    #[test]
    fn generic_types_get_bounds() {
        let input: DeriveInput = syn::parse_str("struct W<T> { inner: T }").unwrap();
        let out = expand_message(&input).unwrap().to_string();
        assert!(out.contains("T : :: dndm_codec :: Schema"), "{out}");
        assert!(out.contains("Encodable"), "{out}");
    }
}
