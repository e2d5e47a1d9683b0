//! placeholder: owned by the metadata helper
