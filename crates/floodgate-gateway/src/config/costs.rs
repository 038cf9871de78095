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

impl BudgetPeriod {
    pub const ALL: [BudgetPeriod; 3] =
        [BudgetPeriod::Day, BudgetPeriod::Month, BudgetPeriod::Total];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
            BudgetPeriod::Total => "total",
        }
    }
}

impl std::fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BudgetPeriod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` must be one of {}",
                    Self::ALL.map(|x| format!("`{x}`")).join(", ")
                )
            })
    }
}

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
