-- tasker schema, version 3 (SQLite).
--
-- A subtask has an identity made by the tracker that started it, so that writes
-- queued while the database was away reach that subtask whatever number the
-- database gives it when the start is applied (numbers stay unique per run).
-- Rows of earlier versions have none and are reached by number.
ALTER TABLE subtasks ADD COLUMN subtask_uid TEXT;
CREATE UNIQUE INDEX subtasks_uid ON subtasks(subtask_uid) WHERE subtask_uid IS NOT NULL;

-- The highest write id applied per writer (a tracker in one process): a queued
-- write sent again after its answer was lost (or a spool file replayed twice) is
-- recognised and skipped.
CREATE TABLE writers (
    writer_id  TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    last_seen  TEXT NOT NULL
) WITHOUT ROWID;
