-- Drift: reference profiles, the latest window state per key, "retrain suggested"
-- records; evaluation runs. Times are unix seconds.
CREATE TABLE drift_profiles (
    key TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE drift_status (
    key TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL,
    drifted BOOLEAN NOT NULL,
    windows BIGINT NOT NULL,
    alarms BIGINT NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE retrain_suggestions (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    features TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX retrain_suggestions_created ON retrain_suggestions (created_at);
CREATE TABLE eval_runs (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    target TEXT NOT NULL,
    golden TEXT NOT NULL,
    n BIGINT NOT NULL,
    accuracy DOUBLE PRECISION,
    accuracy_low DOUBLE PRECISION,
    accuracy_high DOUBLE PRECISION,
    regression BOOLEAN NOT NULL,
    run TEXT NOT NULL
);
CREATE INDEX eval_runs_created ON eval_runs (created_at);
