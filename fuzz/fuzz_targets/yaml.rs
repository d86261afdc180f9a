//! The configuration loader: any text must give objects, problems or an error, quickly
//! (libFuzzer's -timeout catches a slow one), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gantry::source::parse_documents(text);
    }
});
