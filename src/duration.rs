//! Durations as the Gateway API writes them (GEP-2257: `1h2m3s`, `500ms`), shared by the
//! route timeouts and Gantry's own policy fields.

use std::time::Duration;

/// Parses a GEP-2257 duration; the error is a message fit for a status condition.
pub fn parse(text: &str) -> Result<Duration, String> {
    let parsed: gateway_api::Duration = text.parse().map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    Ok(Duration::from_nanos(parsed.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn gep_2257_durations_parse() {
        assert_eq!(super::parse("1m30s").unwrap().as_secs(), 90);
        assert_eq!(super::parse("250ms").unwrap().as_millis(), 250);
        assert!(super::parse("1.5s").is_err());
        assert!(super::parse("-1s").is_err());
    }
}
