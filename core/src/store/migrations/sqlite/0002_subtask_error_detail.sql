-- tasker schema, version 2 (SQLite): a failed subtask keeps the detail of its error
-- (a traceback, say), as a failed run does.
ALTER TABLE subtasks ADD COLUMN error_detail TEXT;
