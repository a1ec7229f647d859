-- tasker schema, version 4 (SQLite).
--
-- Process samples: the writer thread of the process that started a run samples
-- that process (and its children) every sample interval; older samples are thinned
-- to one per 5 minutes (older than 2 hours) and one per hour (older than 2 days).
CREATE TABLE samples (
    sample_id             INTEGER PRIMARY KEY,
    run_id                TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    time                  TEXT NOT NULL,
    pid                   INTEGER NOT NULL,
    cpu_seconds           REAL NOT NULL,
    cpu_percent           REAL,
    rss_bytes             INTEGER NOT NULL,
    peak_rss_bytes        INTEGER,
    read_bytes            INTEGER,
    write_bytes           INTEGER,
    threads               INTEGER,
    open_fds              INTEGER,
    children              INTEGER NOT NULL,
    children_cpu_seconds  REAL NOT NULL,
    children_rss_bytes    INTEGER NOT NULL
);
CREATE INDEX samples_run_time ON samples(run_id, time);

-- Retries: the attempt number of a run and the run it retries (the previous
-- attempt, which failed or was lost).
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN retry_of TEXT;

-- What a run records about how it was started, by itself.
ALTER TABLE runs ADD COLUMN command_line TEXT;
ALTER TABLE runs ADD COLUMN git_dirty INTEGER;
ALTER TABLE runs ADD COLUMN runtime TEXT;
ALTER TABLE runs ADD COLUMN tasker_version TEXT;

-- Inputs and outputs of a run: a value, or a file with its size, modification
-- time and (when asked) content hash.
CREATE TABLE run_io (
    run_id        TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    direction     TEXT NOT NULL CHECK (direction IN ('input', 'output')),
    name          TEXT NOT NULL,
    value         TEXT,
    path          TEXT,
    size_bytes    INTEGER,
    modified      TEXT,
    sha256        TEXT,
    recorded_at   TEXT NOT NULL,
    PRIMARY KEY (run_id, direction, name)
);
