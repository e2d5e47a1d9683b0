#![no_main]
//! See `minikafka_fuzz::record_batch` (fuzz/src/lib.rs) for what this target feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| minikafka_fuzz::record_batch(data));
