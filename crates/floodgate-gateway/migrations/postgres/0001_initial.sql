-- The whole state schema. Times are unix seconds (BIGINT); usage days are 'YYYY-MM-DD'
-- text in UTC, computed by the gateway, so both backends agree on day boundaries.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash BYTEA NOT NULL,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    segment TEXT NOT NULL,
    scopes TEXT NOT NULL,
    limits TEXT NOT NULL,
    budget_usd DOUBLE PRECISION,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
-- Bumped in the same transaction as every key insert and revoke: gateways poll it (and
-- LISTEN on floodgate_keys) to drop their key caches.
CREATE TABLE key_epoch (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO key_epoch VALUES (1, 0);
CREATE TABLE decisions (
    event_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    route TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    record JSONB NOT NULL,
    -- Insertion order, to tell apart records of the same second.
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX decisions_request ON decisions (request_id, created_at);
CREATE INDEX decisions_created ON decisions (created_at);
CREATE INDEX decisions_route ON decisions (route, created_at);
CREATE TABLE usage_daily (
    day TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    compute_seconds DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (day, key_id, route, model)
);
CREATE INDEX usage_key ON usage_daily (key_id, day);
CREATE TABLE request_owners (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    rating SMALLINT NOT NULL,
    correction TEXT,
    comment TEXT,
    fingerprint TEXT,
    weight DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX feedback_key ON feedback (key_id, created_at);
CREATE INDEX feedback_fp ON feedback (fingerprint, created_at);
CREATE INDEX feedback_request ON feedback (request_id);
