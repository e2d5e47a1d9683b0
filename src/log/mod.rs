//! placeholder: owned by the log helper
