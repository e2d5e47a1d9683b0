//! placeholder: owned by the coordinator helper
