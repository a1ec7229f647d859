-- tasker schema, version 6 (SQLite).
--
-- Run times as whole microseconds since 1970, for statistics: `tasker stats` reads
-- every run of a window (100,000 of them, say), and reading each run's table row
-- and parsing its two text times cost more than the statistics themselves.
--
-- Kept equal to the text times by triggers, so that every writer fills them: this
-- version's statements, queued and replayed writes, bulk loads, a time mended by
-- hand. NULL when the text is NULL or not in the fixed form tasker writes
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ); the round trip through the seconds refuses a date
-- or time that does not exist (2026-02-30, 24:00:00), which SQLite's date functions
-- would roll over to another day. (Generated columns would need no triggers, but
-- SQLite reads a VIRTUAL one from the table even when an index holds it, and
-- ALTER TABLE cannot add a STORED one.)
ALTER TABLE runs ADD COLUMN start_us INTEGER;
ALTER TABLE runs ADD COLUMN end_us INTEGER;

UPDATE runs SET
    start_us = CASE WHEN length(start_time) = 27 AND substr(start_time, 20, 1) = '.'
                  AND substr(start_time, 27, 1) = 'Z'
                  AND substr(start_time, 21, 6) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                  AND strftime('%Y-%m-%dT%H:%M:%S',
                               CAST(strftime('%s', substr(start_time, 1, 19)) AS INTEGER), 'unixepoch')
                      = substr(start_time, 1, 19)
             THEN CAST(strftime('%s', substr(start_time, 1, 19)) AS INTEGER) * 1000000
                  + CAST(substr(start_time, 21, 6) AS INTEGER)
        END,
    end_us = CASE WHEN length(end_time) = 27 AND substr(end_time, 20, 1) = '.'
                  AND substr(end_time, 27, 1) = 'Z'
                  AND substr(end_time, 21, 6) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                  AND strftime('%Y-%m-%dT%H:%M:%S',
                               CAST(strftime('%s', substr(end_time, 1, 19)) AS INTEGER), 'unixepoch')
                      = substr(end_time, 1, 19)
             THEN CAST(strftime('%s', substr(end_time, 1, 19)) AS INTEGER) * 1000000
                  + CAST(substr(end_time, 21, 6) AS INTEGER)
        END;

CREATE TRIGGER runs_times_us_insert AFTER INSERT ON runs BEGIN
    UPDATE runs SET
        start_us = CASE WHEN length(NEW.start_time) = 27 AND substr(NEW.start_time, 20, 1) = '.'
                  AND substr(NEW.start_time, 27, 1) = 'Z'
                  AND substr(NEW.start_time, 21, 6) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                  AND strftime('%Y-%m-%dT%H:%M:%S',
                               CAST(strftime('%s', substr(NEW.start_time, 1, 19)) AS INTEGER), 'unixepoch')
                      = substr(NEW.start_time, 1, 19)
             THEN CAST(strftime('%s', substr(NEW.start_time, 1, 19)) AS INTEGER) * 1000000
                  + CAST(substr(NEW.start_time, 21, 6) AS INTEGER)
        END,
        end_us = CASE WHEN length(NEW.end_time) = 27 AND substr(NEW.end_time, 20, 1) = '.'
                  AND substr(NEW.end_time, 27, 1) = 'Z'
                  AND substr(NEW.end_time, 21, 6) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                  AND strftime('%Y-%m-%dT%H:%M:%S',
                               CAST(strftime('%s', substr(NEW.end_time, 1, 19)) AS INTEGER), 'unixepoch')
                      = substr(NEW.end_time, 1, 19)
             THEN CAST(strftime('%s', substr(NEW.end_time, 1, 19)) AS INTEGER) * 1000000
                  + CAST(substr(NEW.end_time, 21, 6) AS INTEGER)
        END
     WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER runs_times_us_update AFTER UPDATE OF start_time, end_time ON runs BEGIN
    UPDATE runs SET
        start_us = CASE WHEN length(NEW.start_time) = 27 AND substr(NEW.start_time, 20, 1) = '.'
                  AND substr(NEW.start_time, 27, 1) = 'Z'
                  AND substr(NEW.start_time, 21, 6) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                  AND strftime('%Y-%m-%dT%H:%M:%S',
                               CAST(strftime('%s', substr(NEW.start_time, 1, 19)) AS INTEGER), 'unixepoch')
                      = substr(NEW.start_time, 1, 19)
             THEN CAST(strftime('%s', substr(NEW.start_time, 1, 19)) AS INTEGER) * 1000000
                  + CAST(substr(NEW.start_time, 21, 6) AS INTEGER)
        END,
        end_us = CASE WHEN length(NEW.end_time) = 27 AND substr(NEW.end_time, 20, 1) = '.'
                  AND substr(NEW.end_time, 27, 1) = 'Z'
                  AND substr(NEW.end_time, 21, 6) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]'
                  AND strftime('%Y-%m-%dT%H:%M:%S',
                               CAST(strftime('%s', substr(NEW.end_time, 1, 19)) AS INTEGER), 'unixepoch')
                      = substr(NEW.end_time, 1, 19)
             THEN CAST(strftime('%s', substr(NEW.end_time, 1, 19)) AS INTEGER) * 1000000
                  + CAST(substr(NEW.end_time, 21, 6) AS INTEGER)
        END
     WHERE rowid = NEW.rowid;
END;

-- Everything statistics read of a run, in task and start order: a third of the
-- table's size, and the order the latest runs of each task are picked in.
CREATE INDEX runs_stats ON runs(task_id, start_us, end_us, status, attempt, retry_of, run_id);

-- Runs whose times are not in the fixed form (tasker never wrote any): when there
-- are some, statistics read the text times of the table instead. Empty, so it
-- costs nothing to keep or to ask.
CREATE INDEX runs_odd_times ON runs(task_id)
    WHERE start_us IS NULL OR (end_us IS NULL AND end_time IS NOT NULL);
