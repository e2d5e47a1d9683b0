#![no_main]
//! See `minikafka_fuzz::offsets_replay` (fuzz/src/lib.rs) for what this target feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| minikafka_fuzz::offsets_replay(data));
