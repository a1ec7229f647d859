-- `tasker history --host` and /api/v1/runs?host=: the newest runs of one host
-- without reading every run.
CREATE INDEX runs_host_start ON runs(hostname, start_time);
