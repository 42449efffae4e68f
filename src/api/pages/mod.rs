//! placeholder
pub mod i18n;
