-- Drift: reference profiles, the latest window state per key, "retrain suggested"
-- records; evaluation runs. Times are unix seconds.
CREATE TABLE IF NOT EXISTS drift_profiles (
    key TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS drift_status (
    key TEXT PRIMARY KEY,
    updated_at INTEGER NOT NULL,
    drifted INTEGER NOT NULL,
    windows INTEGER NOT NULL,
    alarms INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retrain_suggestions (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    features TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retrain_suggestions_created ON retrain_suggestions (created_at);
CREATE TABLE IF NOT EXISTS eval_runs (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    target TEXT NOT NULL,
    golden TEXT NOT NULL,
    n INTEGER NOT NULL,
    accuracy REAL,
    accuracy_low REAL,
    accuracy_high REAL,
    regression INTEGER NOT NULL,
    run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_runs_created ON eval_runs (created_at);
