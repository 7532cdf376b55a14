#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livetape_fuzzing::http_range(data));
