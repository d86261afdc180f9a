//! The check of a connection's first line, however the bytes are split into reads: it never
//! panics, and what it accepts is an HTTP/1.x request line or the HTTP/2 preface.
#![no_main]

use gantry::proxy::fuzzing::first_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let at = usize::from(split).min(bytes.len());
    let whole = first_line(&[bytes]);
    let chunked = first_line(&[&bytes[..at], &bytes[at..]]);
    assert_eq!(whole.is_ok(), chunked.is_ok(), "{bytes:?}");
    if let Ok(true) = whole {
        let trimmed: &[u8] = {
            let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(0);
            &bytes[start..]
        };
        let line_end = trimmed.iter().position(|&b| b == b'\n').expect("a whole line");
        let line = trimmed[..line_end].strip_suffix(b"\r").unwrap_or(&trimmed[..line_end]);
        let ok = line == b"PRI * HTTP/2.0"
            || ((line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"))
                && line.split(|&b| b == b' ').count() == 3);
        assert!(ok, "{:?}", String::from_utf8_lossy(line));
    }
});
