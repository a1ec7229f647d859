-- tasker schema, version 1 (SQLite). Timestamps are UTC text, fixed width:
-- 'YYYY-MM-DDTHH:MM:SS.ffffffZ', so text order is time order.

CREATE TABLE stages (
    stage_id     INTEGER PRIMARY KEY,
    stage_name   TEXT NOT NULL UNIQUE,
    stage_order  INTEGER,
    description  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE tasks (
    task_id          INTEGER PRIMARY KEY,
    stage_id         INTEGER NOT NULL REFERENCES stages(stage_id) ON DELETE CASCADE,
    task_name        TEXT NOT NULL,
    task_type        TEXT,
    task_order       INTEGER,
    description      TEXT,
    script_path      TEXT,
    script_filename  TEXT,
    log_path         TEXT,
    log_filename     TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (stage_id, task_name)
);
CREATE INDEX tasks_script_filename ON tasks(script_filename);

CREATE TABLE runs (
    run_id              TEXT PRIMARY KEY,
    task_id             INTEGER NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    hostname            TEXT NOT NULL,
    process_id          INTEGER NOT NULL,
    parent_pid          INTEGER,
    process_start_time  TEXT,
    user_name           TEXT,
    status              TEXT NOT NULL CHECK (status IN ('NOT_STARTED','STARTED','RUNNING','PAUSED','COMPLETED','FAILED','SKIPPED','CANCELLED')),
    start_time          TEXT NOT NULL,
    end_time            TEXT,
    last_update         TEXT NOT NULL,
    heartbeat_time      TEXT NOT NULL,
    total_subtasks      INTEGER,
    current_subtask     INTEGER,
    overall_percent     REAL,
    message             TEXT,
    version             TEXT,
    git_commit          TEXT,
    script_path         TEXT,
    script_filename     TEXT,
    log_path            TEXT,
    log_filename        TEXT,
    error_message       TEXT,
    error_detail        TEXT,
    metadata            TEXT
);
CREATE INDEX runs_task_start ON runs(task_id, start_time);
CREATE INDEX runs_start ON runs(start_time);
CREATE INDEX runs_active ON runs(status) WHERE status IN ('STARTED','RUNNING','PAUSED');

CREATE TABLE subtasks (
    run_id          TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask_number  INTEGER NOT NULL CHECK (subtask_number >= 1),
    subtask_name    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('NOT_STARTED','STARTED','RUNNING','PAUSED','COMPLETED','FAILED','SKIPPED','CANCELLED')),
    start_time      TEXT,
    end_time        TEXT,
    last_update     TEXT NOT NULL,
    items_total     INTEGER,
    items_complete  INTEGER NOT NULL DEFAULT 0,
    percent         REAL,
    message         TEXT,
    error_message   TEXT,
    PRIMARY KEY (run_id, subtask_number)
);

-- event_id is the rowid: always increasing while the newest event exists. Runs (and
-- their events) are only deleted by purges of old runs, so readers that follow
-- events by id never see an id twice. (AUTOINCREMENT would cost one more page write
-- per transition.)
CREATE TABLE events (
    event_id        INTEGER PRIMARY KEY,
    time            TEXT NOT NULL,
    run_id          TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    subtask_number  INTEGER,
    kind            TEXT NOT NULL,
    old_status      TEXT,
    new_status      TEXT NOT NULL,
    message         TEXT
);
CREATE INDEX events_run ON events(run_id, event_id);
