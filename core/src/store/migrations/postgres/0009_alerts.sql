-- Alerts: one row per incident and rule (claimed by inserting it), with its
-- delivery state. Rows are kept when runs are deleted: they are the record of
-- what was sent.
CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    rule            TEXT NOT NULL,
    incident_key    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    destination     TEXT NOT NULL,
    run_id          TEXT,
    stage_name      TEXT NOT NULL,
    task_name       TEXT NOT NULL,
    fired_at        TIMESTAMPTZ NOT NULL,
    payload         JSONB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ,
    UNIQUE (rule, incident_key)
);
-- Retries: the undelivered rows by when they are due.
CREATE INDEX alerts_due ON alerts(next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX alerts_fired ON alerts(fired_at);
