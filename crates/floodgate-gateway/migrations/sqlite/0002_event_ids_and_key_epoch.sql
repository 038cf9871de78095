-- Decision records keyed by the server's event id (a client's x-request-id may repeat),
-- with the columns that queries filter on; and the key store's change counter.
ALTER TABLE decisions RENAME TO decisions_v1;
CREATE TABLE decisions (
    event_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    route TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
-- Older records had no event id: their request id stands in for it.
INSERT INTO decisions
SELECT request_id, request_id, key_id,
       COALESCE(json_extract(record, '$.tenant'), ''),
       COALESCE(json_extract(record, '$.route.route'), json_extract(record, '$.requested'), ''),
       created_at, record
FROM decisions_v1;
DROP TABLE decisions_v1;
CREATE INDEX decisions_request ON decisions (request_id, created_at);
CREATE INDEX decisions_created ON decisions (created_at);
CREATE INDEX decisions_route ON decisions (route, created_at);
CREATE INDEX feedback_request ON feedback (request_id);
CREATE TABLE key_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO key_epoch VALUES (1, 0);
