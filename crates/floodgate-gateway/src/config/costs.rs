//! `[costs]`: cost accounting and budgets.

use serde::{Deserialize, Serialize};

/// The period a key's `budget_usd` covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    #[default]
    Month,
    /// All time.
    Total,
}

crate::config::value_set!(BudgetPeriod { Day => "day", Month => "month", Total => "total" });

/// Cost accounting and budgets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CostsConfig {
    /// The period a key's `budget_usd` covers: `day`, `month` (UTC calendar) or `total`.
    pub budget_period: BudgetPeriod,
    /// Default price of a local model's compute time, US dollars per hour of the time its
    /// requests spend in the running batch (a model's `usd_per_compute_hour` overrides it).
    pub usd_per_compute_hour: f64,
}

impl Default for CostsConfig {
    fn default() -> Self {
        Self {
            budget_period: BudgetPeriod::Month,
            usd_per_compute_hour: 0.10,
        }
    }
}
