//! What std's prelude would give: the crate is `no_std` so that the wasm build can leave std out.

pub(crate) use alloc::borrow::ToOwned;
pub(crate) use alloc::boxed::Box;
pub(crate) use alloc::format;
pub(crate) use alloc::string::String;
// Used by the browser layer only.
#[cfg_attr(not(target_arch = "wasm32"), allow(unused_imports))]
pub(crate) use alloc::string::ToString;
pub(crate) use alloc::vec;
pub(crate) use alloc::vec::Vec;
