-- tasker schema, version 6 (PostgreSQL). Same tables and meaning as SQLite's.
CREATE TABLE task_dependencies (
    task_id     bigint NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    depends_on  bigint NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_dependencies_upstream ON task_dependencies(depends_on);

-- Wait time of a run (see the SQLite migration): set before the row is
-- inserted, so no run row is updated for it.
ALTER TABLE runs ADD COLUMN wait_seconds double precision;
CREATE INDEX runs_task_end ON runs(task_id, end_time) WHERE status IN ('COMPLETED', 'SKIPPED');
-- Statistics of wait times read only the runs that have one.
CREATE INDEX runs_waited ON runs(start_time) WHERE wait_seconds IS NOT NULL;

CREATE FUNCTION runs_wait_seconds() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM task_dependencies WHERE task_id = NEW.task_id) THEN
        SELECT CASE WHEN COUNT(*) = COUNT(finished)
                    THEN GREATEST(0.0, EXTRACT(EPOCH FROM NEW.start_time - MAX(finished)))::double precision
               END
          INTO NEW.wait_seconds
          FROM (SELECT (SELECT MAX(u.end_time) FROM runs u
                         WHERE u.task_id = d.depends_on
                           AND u.status IN ('COMPLETED', 'SKIPPED')
                           AND u.end_time <= NEW.start_time) AS finished
                  FROM task_dependencies d WHERE d.task_id = NEW.task_id) f;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER runs_wait_seconds BEFORE INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_wait_seconds();
