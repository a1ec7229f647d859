-- tasker schema, version 6 (SQLite).
--
-- Task dependencies: `task_id` depends on `depends_on` (both registered tasks,
-- any stages). The registration that writes them checks, in its transaction,
-- that every name exists and that the graph has no cycle.
CREATE TABLE task_dependencies (
    task_id     INTEGER NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    depends_on  INTEGER NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX task_dependencies_upstream ON task_dependencies(depends_on);

-- Wait time of a run: seconds from the moment its last upstream finished (the
-- latest COMPLETED or SKIPPED run of each upstream that ended by this run's
-- start) to its start. NULL for a task without dependencies, or when an
-- upstream had not finished yet. Set by a trigger so that every way a run is
-- inserted (a start, a replayed start) records it, and a task without
-- dependencies pays one index probe.
ALTER TABLE runs ADD COLUMN wait_seconds REAL;
CREATE INDEX runs_task_end ON runs(task_id, end_time) WHERE status IN ('COMPLETED', 'SKIPPED');
-- Statistics of wait times read only the runs that have one.
CREATE INDEX runs_waited ON runs(start_time) WHERE wait_seconds IS NOT NULL;

CREATE TRIGGER runs_wait_seconds AFTER INSERT ON runs
WHEN EXISTS (SELECT 1 FROM task_dependencies WHERE task_id = NEW.task_id)
BEGIN
    UPDATE runs SET wait_seconds = (
        SELECT CASE WHEN COUNT(*) = COUNT(finished)
                    THEN MAX(0.0, (julianday(NEW.start_time) - julianday(MAX(finished))) * 86400.0)
               END
          FROM (SELECT (SELECT MAX(u.end_time) FROM runs u
                         WHERE u.task_id = d.depends_on
                           AND u.status IN ('COMPLETED', 'SKIPPED')
                           AND u.end_time <= NEW.start_time) AS finished
                  FROM task_dependencies d WHERE d.task_id = NEW.task_id))
     WHERE run_id = NEW.run_id;
END;
