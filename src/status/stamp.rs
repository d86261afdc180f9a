//! Condition times. Compile has no clock, so its conditions carry the Unix epoch; here each
//! condition takes the time from the live object when its status did not change (the
//! Kubernetes convention for `lastTransitionTime`), or now when it did.

use serde_json::Value;

/// Walks `desired` beside `live` and sets every condition's `lastTransitionTime`. Lists are
/// paired by identity (`type` for conditions, `name` for listeners, `parentRef` for route
/// parents), not by position.
pub fn stamp(desired: &mut Value, live: Option<&Value>, now: &str) {
    match desired {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let live_value = live.and_then(|l| l.get(key));
                if key == "conditions" {
                    stamp_conditions(value, live_value, now);
                } else {
                    stamp(value, live_value, now);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let twin = live.and_then(Value::as_array).and_then(|l| l.iter().find(|c| same_identity(item, c)));
                stamp(item, twin, now);
            }
        }
        _ => {}
    }
}

fn stamp_conditions(desired: &mut Value, live: Option<&Value>, now: &str) {
    let Some(conditions) = desired.as_array_mut() else { return };
    for condition in conditions {
        let before = live
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|c| c.get("type") == condition.get("type")))
            .filter(|c| c.get("status") == condition.get("status"))
            .and_then(|c| c.get("lastTransitionTime"))
            .cloned();
        condition["lastTransitionTime"] = before.unwrap_or_else(|| Value::from(now));
    }
}

fn same_identity(a: &Value, b: &Value) -> bool {
    ["name", "parentRef", "type"]
        .iter()
        .find_map(|key| a.get(*key).map(|value| Some(value) == b.get(*key)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unchanged_conditions_keep_their_time_changed_ones_get_now() {
        let live = json!({"conditions": [
            {"type": "Accepted", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Programmed", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]});
        let mut desired = json!({"conditions": [
            {"type": "Accepted", "status": "True", "lastTransitionTime": "1970-01-01T00:00:00Z"},
            {"type": "Programmed", "status": "True", "lastTransitionTime": "1970-01-01T00:00:00Z"}
        ]});
        stamp(&mut desired, Some(&live), "2026-11-26T08:00:00Z");
        assert_eq!(desired["conditions"][0]["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(desired["conditions"][1]["lastTransitionTime"], "2026-11-26T08:00:00Z");
    }

    #[test]
    fn nested_lists_are_paired_by_identity_not_position() {
        let live = json!({"listeners": [
            {"name": "b", "conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "T-b"}]},
            {"name": "a", "conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "T-a"}]}
        ]});
        let mut desired = json!({"listeners": [
            {"name": "a", "conditions": [{"type": "Accepted", "status": "True"}]},
            {"name": "c", "conditions": [{"type": "Accepted", "status": "True"}]}
        ]});
        stamp(&mut desired, Some(&live), "NOW");
        assert_eq!(desired["listeners"][0]["conditions"][0]["lastTransitionTime"], "T-a");
        assert_eq!(desired["listeners"][1]["conditions"][0]["lastTransitionTime"], "NOW");
    }
}
