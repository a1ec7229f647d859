-- tasker schema, version 4 (PostgreSQL). Same tables and meaning as SQLite's.
CREATE TABLE samples (
    sample_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id                text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    time                  timestamptz NOT NULL,
    pid                   bigint NOT NULL,
    cpu_seconds           double precision NOT NULL,
    cpu_percent           double precision,
    rss_bytes             bigint NOT NULL,
    peak_rss_bytes        bigint,
    read_bytes            bigint,
    write_bytes           bigint,
    threads               bigint,
    open_fds              bigint,
    children              bigint NOT NULL,
    children_cpu_seconds  double precision NOT NULL,
    children_rss_bytes    bigint NOT NULL
);
CREATE INDEX samples_run_time ON samples(run_id, time);

ALTER TABLE runs ADD COLUMN attempt bigint NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN retry_of text;
ALTER TABLE runs ADD COLUMN command_line text;
ALTER TABLE runs ADD COLUMN git_dirty boolean;
ALTER TABLE runs ADD COLUMN runtime text;
ALTER TABLE runs ADD COLUMN tasker_version text;

CREATE TABLE run_io (
    run_id        text NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    direction     text NOT NULL CHECK (direction IN ('input', 'output')),
    name          text NOT NULL,
    value         text,
    path          text,
    size_bytes    bigint,
    modified      timestamptz,
    sha256        text,
    recorded_at   timestamptz NOT NULL,
    PRIMARY KEY (run_id, direction, name)
);

-- start_run and apply_progress change their signatures: drop the old ones (a new
-- schema never had them); functions.sql, applied after this file, defines them anew.
DROP FUNCTION IF EXISTS start_run(text, text, text, text, bigint, bigint, timestamptz, text,
    timestamptz, bigint, text, text, text, text, text, text, text, jsonb, integer, integer);
DROP FUNCTION IF EXISTS apply_progress(text[], bigint[], text[], bigint[], bigint[], bigint[],
    double precision[], text[], bigint[], text[], text[], timestamptz, integer, integer, text,
    bigint);
