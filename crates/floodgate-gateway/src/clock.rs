//! Wall-clock time as the gateway stores and sends it: whole seconds since the Unix epoch
//! (key creation and revocation, request records, budgets, feedback, OpenAI `created`).
//! Durations on the request path use `Instant`, never this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the system clock is set before it.
#[must_use]
pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_after_2020_and_does_not_go_back() {
        let a = unix_secs();
        assert!(a > 1_577_836_800, "{a}");
        assert!(unix_secs() >= a);
    }
}
