-- Operators' actions (keys created and revoked, models and routes changed, reloads),
-- keyed by their event id so that a replayed event is stored once.
CREATE TABLE admin_events (
    event_id TEXT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    origin TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    target TEXT NOT NULL,
    detail JSONB NOT NULL
);
CREATE INDEX admin_events_time ON admin_events (time_ms);
