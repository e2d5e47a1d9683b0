//! placeholder: owned by the records helper
