//! Dashboard sections fed by other parts of the system than the per-minute rollups.
//!
//! Each function returns the inside of its `<section>` as HTML (escape every string
//! with [`super::html::escape`]). They take `&AppState` so they can read what their
//! subsystem stores; like the rest of the dashboard they must only read stored results,
//! never anything on the request path.

use crate::AppState;

// ---------------------------------------------------------------------------------------
// Drift: to be filled in with the drift monitor's status per model version (input and
// output distributions against their reference profile, over time).
// ---------------------------------------------------------------------------------------

/// The "Drift" section's body.
pub fn drift(_state: &AppState) -> String {
    "<p class=\"muted\">No drift profile yet: drift status per model version appears here \
     once a reference profile is recorded.</p>"
        .into()
}

// ---------------------------------------------------------------------------------------
// Evaluation: to be filled in with evaluation scores over time, per model version (the
// golden-set and reference runs).
// ---------------------------------------------------------------------------------------

/// The "Evaluation" section's body.
pub fn evaluation(_state: &AppState) -> String {
    "<p class=\"muted\">No evaluation runs yet: scores over time per model version appear \
     here once an evaluation has run.</p>"
        .into()
}
