//! Path normalisation under each escaped-slash policy: a normalised path is absolute, has no
//! empty or dot segment, keeps what the policy says about slashes, and normalising it again
//! changes nothing (so that the path routed is the path forwarded).
#![no_main]

use gantry::proxy::fuzzing::{EscapedSlashes, Normalized, normalize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(path) = std::str::from_utf8(rest) else { return };
    let policy = match selector % 4 {
        0 => EscapedSlashes::Reject,
        1 => EscapedSlashes::Keep,
        2 => EscapedSlashes::UnescapeAndRedirect,
        _ => EscapedSlashes::UnescapeAndForward,
    };
    let normalized = match normalize(path, policy) {
        Ok(Normalized::Path(p)) => p.into_owned(),
        Ok(Normalized::Redirect(p)) => {
            assert_eq!(policy, EscapedSlashes::UnescapeAndRedirect);
            p
        }
        Err(_) => return,
    };
    assert!(normalized.starts_with('/'), "{path:?} -> {normalized:?}");
    assert!(!normalized.contains("//"), "{path:?} -> {normalized:?}");
    for segment in normalized.split('/') {
        assert!(segment != "." && segment != "..", "{path:?} -> {normalized:?}");
    }
    let upper = normalized.to_ascii_uppercase();
    if policy != EscapedSlashes::Keep {
        assert!(
            !upper.contains("%2F") && !upper.contains("%5C") && !normalized.contains('\\'),
            "{path:?} -> {normalized:?}"
        );
    }
    let again = match normalize(&normalized, policy) {
        Ok(Normalized::Path(p)) => p.into_owned(),
        other => panic!("{path:?} -> {normalized:?} -> {other:?}"),
    };
    assert_eq!(again, normalized, "{path:?}");
    // Bytes outside ASCII are kept, in order.
    let outside = |s: &str| s.bytes().filter(|b| !b.is_ascii()).count();
    assert!(outside(&normalized) <= outside(path));
});
