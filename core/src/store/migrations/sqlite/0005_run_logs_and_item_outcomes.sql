-- tasker schema, version 5 (SQLite).
--
-- Run logs: lines a run logged (`RunHandle::log`), written with progress by
-- each process's writer. log_id order is store order, which per process is
-- the order the lines were logged. A run keeps at most tracking.max_log_lines
-- lines: run_log_state counts the lines kept and those dropped (the oldest).
CREATE TABLE run_logs (
    log_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    time            TEXT NOT NULL,
    level           INTEGER NOT NULL,
    subtask_number  INTEGER,
    hostname        TEXT,
    process_id      INTEGER,
    message         TEXT NOT NULL
);
CREATE INDEX run_logs_run ON run_logs(run_id, log_id);

CREATE TABLE run_log_state (
    run_id   TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    kept     INTEGER NOT NULL DEFAULT 0,
    dropped  INTEGER NOT NULL DEFAULT 0
);

-- Item outcomes: which items of a subtask failed or were skipped, and why. The
-- first rows per subtask and outcome are kept; item_outcome_counts counts all.
CREATE TABLE item_outcomes (
    outcome_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask_number  INTEGER NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('failed', 'skipped')),
    item_key        TEXT NOT NULL,
    reason          TEXT,
    time            TEXT NOT NULL,
    hostname        TEXT,
    process_id      INTEGER
);
CREATE INDEX item_outcomes_run ON item_outcomes(run_id, subtask_number, outcome_id);

CREATE TABLE item_outcome_counts (
    run_id          TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask_number  INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    total           INTEGER NOT NULL DEFAULT 0,
    kept            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, subtask_number, outcome)
);
