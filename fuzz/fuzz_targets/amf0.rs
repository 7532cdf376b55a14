#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livetape_fuzzing::amf0(data));
