-- tasker schema, version 3 (PostgreSQL).
--
-- A subtask has an identity made by the tracker that started it, so that writes
-- queued while the database was away reach that subtask whatever number the
-- database gives it when the start is applied (numbers stay unique per run).
-- Rows of earlier versions have none and are reached by number. (Not updated by
-- progress, so progress updates stay HOT.)
ALTER TABLE subtasks ADD COLUMN subtask_uid text;
CREATE UNIQUE INDEX subtasks_uid ON subtasks(subtask_uid) WHERE subtask_uid IS NOT NULL;

-- Every write, not only progress, now carries an id applied at most once per writer.
ALTER TABLE progress_writers RENAME TO writers;

-- The server functions change their signatures; functions.sql defines them anew.
DROP FUNCTION run_transition(text, text, text[], text, text, text, boolean, text, timestamptz,
    integer, integer);
DROP FUNCTION subtask_start(text, text, bigint, bigint, text, boolean, timestamptz, integer,
    integer);
DROP FUNCTION subtask_transition(text, bigint, text, text[], text, text, text, boolean,
    timestamptz, integer, integer);
DROP FUNCTION apply_progress(text[], bigint[], bigint[], bigint[], bigint[], double precision[],
    text[], bigint[], text[], text[], timestamptz, integer, integer, text, bigint);
