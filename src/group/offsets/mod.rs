//! placeholder: owned by the offsets helper
