//! placeholder: owned by the reactor helper
