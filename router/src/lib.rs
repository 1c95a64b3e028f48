//! `dndm-router` will hold the named-data model: routes (`Type@path`),
//! patterns (`*`, `**`), the linker that joins intents with interests, and
//! the sans-IO peer session that turns frames into events.
//!
//! Status: not implemented yet; this crate exports nothing so far. It depends
//! on `dndm-core` and `dndm-codec` only and never on a transport.
#![forbid(unsafe_code)]
