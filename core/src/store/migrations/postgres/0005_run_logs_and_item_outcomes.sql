-- tasker schema, version 5 (PostgreSQL). Same tables and meaning as SQLite's.
CREATE TABLE run_logs (
    log_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    time            timestamptz NOT NULL,
    level           integer NOT NULL,
    subtask_number  bigint,
    hostname        text,
    process_id      bigint,
    message         text NOT NULL
);
CREATE INDEX run_logs_run ON run_logs(run_id, log_id);

CREATE TABLE run_log_state (
    run_id   text PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    kept     bigint NOT NULL DEFAULT 0,
    dropped  bigint NOT NULL DEFAULT 0
);

CREATE TABLE item_outcomes (
    outcome_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask_number  bigint NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('failed', 'skipped')),
    item_key        text NOT NULL,
    reason          text,
    time            timestamptz NOT NULL,
    hostname        text,
    process_id      bigint
);
CREATE INDEX item_outcomes_run ON item_outcomes(run_id, subtask_number, outcome_id);

CREATE TABLE item_outcome_counts (
    run_id          text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask_number  bigint NOT NULL,
    outcome         text NOT NULL,
    total           bigint NOT NULL DEFAULT 0,
    kept            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, subtask_number, outcome)
);

-- apply_progress takes the log lines and item outcomes of the flush (p_logs).
DROP FUNCTION IF EXISTS apply_progress(text[], bigint[], text[], bigint[], bigint[], bigint[],
    double precision[], text[], bigint[], text[], text[], timestamptz, integer, integer, text,
    bigint, jsonb);
