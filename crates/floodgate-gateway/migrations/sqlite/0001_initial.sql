-- The state database as it was before versioned migrations: every statement is
-- IF NOT EXISTS, so a database created by an older gateway takes this version as is.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash BLOB NOT NULL,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    segment TEXT NOT NULL,
    scopes TEXT NOT NULL,
    limits TEXT NOT NULL,
    budget_usd REAL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS decisions (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_daily (
    day TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    compute_seconds REAL NOT NULL,
    cost_usd REAL NOT NULL,
    PRIMARY KEY (day, key_id, route, model)
);
CREATE INDEX IF NOT EXISTS usage_key ON usage_daily (key_id, day);
CREATE TABLE IF NOT EXISTS request_owners (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    rating INTEGER NOT NULL,
    correction TEXT,
    comment TEXT,
    fingerprint TEXT,
    weight REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_key ON feedback (key_id, created_at);
CREATE INDEX IF NOT EXISTS feedback_fp ON feedback (fingerprint, created_at);
