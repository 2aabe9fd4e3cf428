//! What a provider is and how each kind behaves: the catalog of presets and connector types,
//! scopes (vocabularies, merge, diff, lint), and the provider kinds' rules.

pub mod catalog;
pub mod profile;
pub mod scope;
