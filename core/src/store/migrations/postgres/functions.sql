-- tasker's server functions (PostgreSQL): the current definition of every one,
-- in this one file. A migration that changes them re-applies the whole file
-- (CREATE OR REPLACE); schema changes stay in the numbered migrations.
--
-- Each write is one function call: one round trip. The rules of the state
-- machine stay in Rust, which passes the statuses a transition may start from
-- (p_allowed). Every function takes its locks in one order: the run's row
-- first, then its writer's row (writer_step), then the events lock (p_lock_ns,
-- p_lock_key) before appending events, so event ids are handed out in commit
-- order and writers never deadlock.
--
-- p_writer and p_seq (both NULL, or both set) name the write: a write whose
-- COMMIT reached the server but whose answer was lost is sent again under the
-- same name, and is then answered 'dup' instead of being applied twice.

-- The writes' answers gained the events they appended (o_events): a changed
-- answer is a new function for PostgreSQL, so these are dropped and made again.
DROP FUNCTION IF EXISTS start_run(text, text, text, text, bigint, bigint, timestamptz, text,
    timestamptz, bigint, text, text, text, text, text, text, text, jsonb, integer, integer,
    text, boolean, text, text, bigint, boolean, text, timestamptz);
DROP FUNCTION IF EXISTS run_transition(text, text, text[], text, text, text, boolean, text,
    timestamptz, integer, integer, text, bigint);
DROP FUNCTION IF EXISTS subtask_start(text, text, text, bigint, bigint, text, boolean, boolean,
    timestamptz, integer, integer);
DROP FUNCTION IF EXISTS subtask_transition(text, text, bigint, text, text[], text, text, text,
    boolean, timestamptz, integer, integer, text, bigint);
DROP FUNCTION IF EXISTS apply_progress(text[], bigint[], text[], bigint[], bigint[], bigint[],
    double precision[], text[], bigint[], text[], text[], timestamptz, integer, integer, text,
    bigint, jsonb, jsonb);

-- Takes the events lock and answers the newest event id (0 when none): what a
-- write appends while it holds the lock comes after it, and nothing else does.
CREATE OR REPLACE FUNCTION lock_events(p_lock_ns integer, p_lock_key integer)
RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
    RETURN COALESCE((SELECT max(event_id) FROM events), 0);
END $$;

-- The events appended after p_after (by this write: see lock_events), oldest
-- first, each as the events query reads it (crate::query::EventRow).
CREATE OR REPLACE FUNCTION events_since(p_after bigint)
RETURNS jsonb LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT jsonb_agg(jsonb_build_object(
        'event_id', e.event_id, 'time', e.time, 'run_id', e.run_id,
        'stage_name', s.stage_name, 'task_name', t.task_name,
        'subtask_number', e.subtask_number, 'kind', e.kind, 'old_status', e.old_status,
        'new_status', e.new_status, 'message', e.message) ORDER BY e.event_id)
      FROM events e JOIN runs r ON r.run_id = e.run_id
      JOIN tasks t ON t.task_id = r.task_id JOIN stages s ON s.stage_id = t.stage_id
     WHERE e.event_id > p_after
$$;

-- True when write p_seq of p_writer is new (and records it), false when this
-- writer already applied it or a later one.
CREATE OR REPLACE FUNCTION writer_step(p_writer text, p_seq bigint, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF p_writer IS NULL THEN
        RETURN true;
    END IF;
    INSERT INTO writers AS w (writer_id, seq, last_seen) VALUES (p_writer, p_seq, p_now)
    ON CONFLICT (writer_id) DO UPDATE SET seq = EXCLUDED.seq, last_seen = EXCLUDED.last_seen
        WHERE w.seq < EXCLUDED.seq;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_seq = 1 THEN
        DELETE FROM writers WHERE last_seen < p_now - interval '30 days';
    END IF;
    RETURN true;
END $$;

-- o_started: true when the run was inserted, false when a run with this id
-- exists; o_events: the events it appended.
CREATE OR REPLACE FUNCTION start_run(
    p_run text, p_stage text, p_task text, p_host text, p_pid bigint, p_ppid bigint,
    p_pstart timestamptz, p_user text, p_now timestamptz, p_total bigint, p_message text,
    p_version text, p_git text, p_script_path text, p_script_filename text,
    p_log_path text, p_log_filename text, p_metadata jsonb,
    p_lock_ns integer, p_lock_key integer,
    p_command_line text, p_git_dirty boolean, p_runtime text, p_tasker_version text,
    p_attempt bigint, p_retry boolean, p_known_lost text, p_lost_before timestamptz,
    OUT o_started boolean, OUT o_events jsonb)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_before bigint;
    v_task bigint;
    v_prev runs%ROWTYPE;
    v_attempt bigint := COALESCE(p_attempt, 1);
    v_retry_of text;
BEGIN
    SELECT t.task_id INTO v_task FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
     WHERE s.stage_name = p_stage AND t.task_name = p_task;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM stages WHERE stage_name = p_stage) THEN
            INSERT INTO stages(stage_name, created_at, updated_at) VALUES (p_stage, p_now, p_now)
            ON CONFLICT (stage_name) DO NOTHING;
        END IF;
        INSERT INTO tasks(stage_id, task_name, created_at, updated_at)
        SELECT stage_id, p_task, p_now, p_now FROM stages WHERE stage_name = p_stage
        ON CONFLICT (stage_id, task_name) DO NOTHING;
        SELECT t.task_id INTO STRICT v_task FROM tasks t JOIN stages s ON s.stage_id = t.stage_id
         WHERE s.stage_name = p_stage AND t.task_name = p_task;
    END IF;
    -- Attempts (the same rule as the SQLite store's `attempt_of`): an explicit
    -- attempt above 1 retries the task's latest run; `retry` counts on from the
    -- latest run when it failed or was lost.
    IF p_retry OR p_attempt > 1 THEN
        SELECT * INTO v_prev FROM runs WHERE task_id = v_task AND run_id <> p_run
         ORDER BY start_time DESC, run_id DESC LIMIT 1;
        IF FOUND THEN
            IF p_attempt IS NOT NULL THEN
                v_retry_of := CASE WHEN p_attempt > 1 THEN v_prev.run_id END;
            ELSIF v_prev.status = 'FAILED' OR v_prev.run_id = p_known_lost
               OR (v_prev.status IN ('STARTED','RUNNING','PAUSED')
                   AND COALESCE(v_prev.heartbeat_time, v_prev.last_update) < p_lost_before) THEN
                v_attempt := v_prev.attempt + 1;
                v_retry_of := v_prev.run_id;
            END IF;
        END IF;
    END IF;
    INSERT INTO runs(run_id, task_id, hostname, process_id, parent_pid, process_start_time,
        user_name, status, start_time, last_update, heartbeat_time, total_subtasks,
        message, version, git_commit, script_path, script_filename, log_path,
        log_filename, metadata, command_line, git_dirty, runtime, tasker_version,
        attempt, retry_of)
    VALUES (p_run, v_task, p_host, p_pid, p_ppid, p_pstart, p_user, 'STARTED', p_now, p_now,
        p_now, p_total, p_message, p_version, p_git, p_script_path, p_script_filename,
        p_log_path, p_log_filename, p_metadata, p_command_line, p_git_dirty, p_runtime,
        p_tasker_version, v_attempt, v_retry_of)
    ON CONFLICT (run_id) DO NOTHING;
    o_started := FOUND;
    IF NOT o_started THEN
        RETURN;
    END IF;
    v_before := lock_events(p_lock_ns, p_lock_key);
    INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
    VALUES (p_now, p_run, NULL, 'run', 'NOT_STARTED', 'STARTED', p_message);
    o_events := events_since(v_before);
END $$;

-- o_code: ok, same (it had that status: nothing written), no_run, invalid, dup;
-- o_status: the run's status before; o_events: the events it appended.
CREATE OR REPLACE FUNCTION run_transition(
    p_run text, p_to text, p_allowed text[], p_message text, p_error text, p_detail text,
    p_reset boolean, p_sub_message text, p_now timestamptz,
    p_lock_ns integer, p_lock_key integer, p_writer text, p_seq bigint,
    OUT o_code text, OUT o_status text, OUT o_events jsonb)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_terminal boolean := p_to IN ('COMPLETED','FAILED','SKIPPED','CANCELLED');
    v_before bigint;
BEGIN
    SELECT status INTO o_status FROM runs WHERE run_id = p_run FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'no_run';
        RETURN;
    END IF;
    IF NOT writer_step(p_writer, p_seq, p_now) THEN
        o_code := 'dup';
        RETURN;
    END IF;
    IF o_status = p_to AND NOT p_reset THEN
        IF p_message IS NOT NULL AND NOT v_terminal THEN
            UPDATE runs SET message = p_message, last_update = p_now WHERE run_id = p_run;
        END IF;
        o_code := 'same';
        RETURN;
    END IF;
    IF NOT (o_status = ANY (p_allowed)) THEN
        o_code := 'invalid';
        RETURN;
    END IF;
    v_before := lock_events(p_lock_ns, p_lock_key);
    IF v_terminal THEN
        INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
        SELECT p_now, run_id, subtask_number, 'subtask', status, p_to, p_sub_message FROM subtasks
         WHERE run_id = p_run AND status IN ('NOT_STARTED','STARTED','RUNNING','PAUSED')
         ORDER BY subtask_number;
        UPDATE subtasks SET status = p_to, end_time = p_now, last_update = p_now,
            error_message = COALESCE(error_message, p_sub_message)
         WHERE run_id = p_run AND status IN ('NOT_STARTED','STARTED','RUNNING','PAUSED');
    END IF;
    UPDATE runs SET status = p_to, last_update = p_now, heartbeat_time = p_now,
        end_time = CASE WHEN v_terminal THEN p_now END,
        message = COALESCE(p_message, message),
        error_message = CASE WHEN p_reset THEN p_error ELSE COALESCE(p_error, error_message) END,
        error_detail = CASE WHEN p_reset THEN p_detail ELSE COALESCE(p_detail, error_detail) END
     WHERE run_id = p_run;
    INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
    VALUES (p_now, p_run, NULL, CASE WHEN p_reset THEN 'reset' ELSE 'run' END, o_status, p_to,
            COALESCE(p_error, p_message));
    o_events := events_since(v_before);
    o_code := 'ok';
END $$;

-- Starts subtask p_uid. o_code: ok (o_number: its number; also when this start was
-- applied before), no_run, run_done (o_status: the run's), exists (o_number taken).
-- p_renumber: an explicit number taken meanwhile gives the next free one instead.
-- o_events: the events it appended.
CREATE OR REPLACE FUNCTION subtask_start(
    p_run text, p_uid text, p_name text, p_number bigint, p_items_total bigint,
    p_message text, p_restart boolean, p_renumber boolean, p_now timestamptz,
    p_lock_ns integer, p_lock_key integer,
    OUT o_code text, OUT o_status text, OUT o_number bigint, OUT o_events jsonb)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_run text;
    v_prev text;
    v_before bigint;
BEGIN
    SELECT status INTO v_run FROM runs WHERE run_id = p_run FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'no_run';
        RETURN;
    END IF;
    SELECT subtask_number INTO o_number FROM subtasks WHERE subtask_uid = p_uid AND run_id = p_run;
    IF FOUND THEN
        o_code := 'ok';
        RETURN;
    END IF;
    IF v_run IN ('COMPLETED','FAILED','SKIPPED','CANCELLED') THEN
        o_code := 'run_done';
        o_status := v_run;
        RETURN;
    END IF;
    IF p_number IS NOT NULL THEN
        o_number := p_number;
        SELECT status INTO v_prev FROM subtasks WHERE run_id = p_run AND subtask_number = p_number;
        IF v_prev IS NOT NULL AND NOT p_restart THEN
            IF NOT p_renumber THEN
                o_code := 'exists';
                RETURN;
            END IF;
            v_prev := NULL;
            o_number := NULL;
        END IF;
    END IF;
    IF o_number IS NULL THEN
        SELECT COALESCE(MAX(subtask_number), 0) + 1 INTO o_number FROM subtasks WHERE run_id = p_run;
    END IF;
    IF v_prev IS NOT NULL THEN
        UPDATE subtasks SET subtask_name = p_name, status = 'STARTED', start_time = p_now,
            end_time = NULL, last_update = p_now, items_total = p_items_total, items_complete = 0,
            percent = NULL, message = p_message, error_message = NULL, error_detail = NULL,
            subtask_uid = p_uid
         WHERE run_id = p_run AND subtask_number = o_number;
    ELSE
        INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, start_time,
            last_update, items_total, message, subtask_uid)
        VALUES (p_run, o_number, p_name, 'STARTED', p_now, p_now, p_items_total, p_message, p_uid);
    END IF;
    v_before := lock_events(p_lock_ns, p_lock_key);
    INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
    VALUES (p_now, p_run, o_number, CASE WHEN v_prev IS NULL THEN 'subtask' ELSE 'reset' END,
            COALESCE(v_prev, 'NOT_STARTED'), 'STARTED', p_name);
    UPDATE runs SET current_subtask = o_number, last_update = p_now,
        status = CASE WHEN status = 'STARTED' THEN 'RUNNING' ELSE status END
     WHERE run_id = p_run;
    IF v_run = 'STARTED' THEN
        INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
        VALUES (p_now, p_run, NULL, 'run', 'STARTED', 'RUNNING', NULL);
    END IF;
    o_events := events_since(v_before);
    o_code := 'ok';
    o_status := v_prev;
END $$;

-- The subtask is p_uid when given, else number p_number. o_code: ok, same (it had
-- that status: nothing written), no_run, no_subtask, invalid, dup; o_status: its
-- status before; o_number: its number; o_events: the events it appended.
CREATE OR REPLACE FUNCTION subtask_transition(
    p_run text, p_uid text, p_number bigint, p_to text, p_allowed text[], p_message text,
    p_error text, p_detail text, p_reset boolean, p_now timestamptz,
    p_lock_ns integer, p_lock_key integer, p_writer text, p_seq bigint,
    OUT o_code text, OUT o_status text, OUT o_number bigint, OUT o_events jsonb)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_before bigint;
BEGIN
    PERFORM 1 FROM runs WHERE run_id = p_run FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'no_run';
        RETURN;
    END IF;
    IF p_uid IS NOT NULL THEN
        SELECT subtask_number, status INTO o_number, o_status FROM subtasks
         WHERE subtask_uid = p_uid AND run_id = p_run;
    ELSE
        SELECT subtask_number, status INTO o_number, o_status FROM subtasks
         WHERE run_id = p_run AND subtask_number = p_number;
    END IF;
    IF NOT FOUND THEN
        o_code := 'no_subtask';
        RETURN;
    END IF;
    IF NOT writer_step(p_writer, p_seq, p_now) THEN
        o_code := 'dup';
        RETURN;
    END IF;
    IF o_status = p_to AND NOT p_reset THEN
        IF p_message IS NOT NULL AND p_to NOT IN ('COMPLETED','FAILED','SKIPPED','CANCELLED') THEN
            UPDATE subtasks SET message = p_message, last_update = p_now
             WHERE run_id = p_run AND subtask_number = o_number;
        END IF;
        o_code := 'same';
        RETURN;
    END IF;
    IF NOT (o_status = ANY (p_allowed)) THEN
        o_code := 'invalid';
        RETURN;
    END IF;
    UPDATE subtasks SET status = p_to, last_update = p_now,
        end_time = CASE WHEN p_to IN ('COMPLETED','FAILED','SKIPPED','CANCELLED') THEN p_now END,
        message = COALESCE(p_message, message),
        error_message = CASE WHEN p_reset THEN p_error ELSE COALESCE(p_error, error_message) END,
        error_detail = CASE WHEN p_reset THEN p_detail ELSE COALESCE(p_detail, error_detail) END
     WHERE run_id = p_run AND subtask_number = o_number;
    v_before := lock_events(p_lock_ns, p_lock_key);
    INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
    VALUES (p_now, p_run, o_number, CASE WHEN p_reset THEN 'reset' ELSE 'subtask' END, o_status,
            p_to, COALESCE(p_error, p_message));
    o_events := events_since(v_before);
    o_code := 'ok';
END $$;

-- One progress flush: element i of the arrays is one update (subtask p_uids[i] when
-- set, else number p_subtasks[i]; both NULL: run-level progress). Locks every run
-- it touches (p_lock_runs, sorted) first. An update of a finished subtask adds its
-- items (made before it finished, in another process) and sets nothing. Answers
-- the indexes (from 0) of such updates with their subtask's status; o_dup when
-- this batch was applied before; o_events: the events it appended (the implicit
-- STARTED -> RUNNING of runs and subtasks).
CREATE OR REPLACE FUNCTION apply_progress(
    p_runs text[], p_subtasks bigint[], p_uids text[], p_set bigint[], p_delta bigint[],
    p_total bigint[], p_percent double precision[], p_message text[], p_current bigint[],
    p_beats text[], p_lock_runs text[], p_now timestamptz,
    p_lock_ns integer, p_lock_key integer, p_writer text, p_seq bigint,
    p_samples jsonb, p_logs jsonb,
    OUT o_dup boolean, OUT o_finished integer[], OUT o_status text[], OUT o_events jsonb)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_before bigint;
    v_moved integer;
    v_number bigint;
    v_status text;
BEGIN
    o_dup := false;
    o_finished := '{}';
    o_status := '{}';
    PERFORM 1 FROM runs WHERE run_id = ANY (p_lock_runs) ORDER BY run_id COLLATE "C" FOR UPDATE;
    IF NOT writer_step(p_writer, p_seq, p_now) THEN
        o_dup := true;
        RETURN;
    END IF;
    FOR i IN 1 .. COALESCE(array_length(p_runs, 1), 0) LOOP
        IF p_uids[i] IS NOT NULL OR p_subtasks[i] IS NOT NULL THEN
            IF p_uids[i] IS NOT NULL THEN
                UPDATE subtasks SET
                    items_complete = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN items_complete ELSE COALESCE(p_set[i], items_complete) END + p_delta[i],
                    items_total = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN items_total ELSE COALESCE(p_total[i], items_total) END,
                    percent = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN percent ELSE COALESCE(p_percent[i], percent) END,
                    message = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN message ELSE COALESCE(p_message[i], message) END,
                    last_update = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN last_update ELSE p_now END
                 WHERE subtask_uid = p_uids[i] AND run_id = p_runs[i]
                 RETURNING subtask_number, status INTO v_number, v_status;
            ELSE
                UPDATE subtasks SET
                    items_complete = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN items_complete ELSE COALESCE(p_set[i], items_complete) END + p_delta[i],
                    items_total = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN items_total ELSE COALESCE(p_total[i], items_total) END,
                    percent = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN percent ELSE COALESCE(p_percent[i], percent) END,
                    message = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN message ELSE COALESCE(p_message[i], message) END,
                    last_update = CASE WHEN status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                        THEN last_update ELSE p_now END
                 WHERE run_id = p_runs[i] AND subtask_number = p_subtasks[i]
                 RETURNING subtask_number, status INTO v_number, v_status;
            END IF;
            IF FOUND THEN
                IF v_status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED') THEN
                    o_finished := o_finished || (i - 1);
                    o_status := o_status || v_status;
                ELSIF v_status = 'STARTED' THEN
                    UPDATE subtasks SET status = 'RUNNING'
                     WHERE run_id = p_runs[i] AND subtask_number = v_number;
                    IF v_before IS NULL THEN
                        v_before := lock_events(p_lock_ns, p_lock_key);
                    END IF;
                    INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
                    VALUES (p_now, p_runs[i], v_number, 'subtask', 'STARTED', 'RUNNING', NULL);
                END IF;
            END IF;
            UPDATE runs SET last_update = p_now WHERE run_id = p_runs[i];
        ELSE
            UPDATE runs SET
                current_subtask = COALESCE(p_current[i], current_subtask),
                overall_percent = COALESCE(p_percent[i], overall_percent),
                message = COALESCE(p_message[i], message),
                last_update = p_now
             WHERE run_id = p_runs[i];
        END IF;
        UPDATE runs SET status = 'RUNNING' WHERE run_id = p_runs[i] AND status = 'STARTED';
        GET DIAGNOSTICS v_moved = ROW_COUNT;
        IF v_moved > 0 THEN
            IF v_before IS NULL THEN
                v_before := lock_events(p_lock_ns, p_lock_key);
            END IF;
            INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
            VALUES (p_now, p_runs[i], NULL, 'run', 'STARTED', 'RUNNING', NULL);
        END IF;
    END LOOP;
    IF COALESCE(array_length(p_beats, 1), 0) > 0 THEN
        UPDATE runs SET heartbeat_time = p_now WHERE run_id = ANY (p_beats);
    END IF;
    IF p_samples IS NOT NULL THEN
        INSERT INTO samples(run_id, time, pid, cpu_seconds, cpu_percent, rss_bytes,
            peak_rss_bytes, read_bytes, write_bytes, threads, open_fds, children,
            children_cpu_seconds, children_rss_bytes)
        SELECT x.run_id, x.time, x.pid, x.cpu_seconds, x.cpu_percent, x.rss_bytes,
            x.peak_rss_bytes, x.read_bytes, x.write_bytes, x.threads, x.open_fds, x.children,
            x.children_cpu_seconds, x.children_rss_bytes
          FROM jsonb_to_recordset(p_samples) AS x(run_id text, time timestamptz, pid bigint,
            cpu_seconds double precision, cpu_percent double precision, rss_bytes bigint,
            peak_rss_bytes bigint, read_bytes bigint, write_bytes bigint, threads bigint,
            open_fds bigint, children bigint, children_cpu_seconds double precision,
            children_rss_bytes bigint)
         WHERE EXISTS (SELECT 1 FROM runs r WHERE r.run_id = x.run_id);
    END IF;
    IF p_logs IS NOT NULL THEN
        PERFORM apply_logs(p_logs, p_lock_ns, p_lock_key);
    END IF;
    IF v_before IS NOT NULL THEN
        o_events := events_since(v_before);
    END IF;
END $$;

-- The log lines and item outcomes of one flush (crate::logs::LogBatch as JSON),
-- inside apply_progress (the runs are locked). Lines and outcomes of runs that
-- do not exist (deleted meanwhile) are dropped.
CREATE OR REPLACE FUNCTION apply_logs(p_logs jsonb, p_lock_ns integer, p_lock_key integer)
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_max bigint := GREATEST(COALESCE((p_logs->>'max_lines')::bigint, 10000), 1);
    v_host text := p_logs->>'host';
    v_pid bigint := (p_logs->>'pid')::bigint;
    v_kept bigint;
    v_excess bigint;
    v_number bigint;
    r record;
BEGIN
    IF jsonb_array_length(COALESCE(p_logs->'lines', '[]')) > 0 THEN
        -- Log ids handed out in commit order (as event ids): a reader following
        -- a run's lines by id never skips a line committed later.
        PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
        INSERT INTO run_logs(run_id, time, level, subtask_number, hostname, process_id, message)
        SELECT e.j->>'run_id', (e.j->>'time')::timestamptz,
               CASE lower(e.j->>'level') WHEN 'debug' THEN 10 WHEN 'info' THEN 20
                    WHEN 'warn' THEN 30 ELSE 40 END,
               COALESCE((SELECT s.subtask_number FROM subtasks s
                          WHERE s.run_id = e.j->>'run_id' AND s.subtask_uid = e.j->>'subtask_uid'),
                        (e.j->>'subtask')::bigint),
               v_host, v_pid, e.j->>'message'
          FROM jsonb_array_elements(p_logs->'lines') WITH ORDINALITY AS e(j, ord)
         WHERE EXISTS (SELECT 1 FROM runs x WHERE x.run_id = e.j->>'run_id')
         ORDER BY e.ord;
    END IF;
    -- What each run keeps: its oldest lines beyond the bound go, counted.
    FOR r IN
        SELECT t.run_id, sum(t.n)::bigint AS n, sum(t.d)::bigint AS d FROM (
            SELECT e.j->>'run_id' AS run_id, 1 AS n, 0 AS d
              FROM jsonb_array_elements(COALESCE(p_logs->'lines', '[]')) AS e(j)
            UNION ALL
            SELECT e.j->>'run_id', 0, (e.j->>'count')::bigint
              FROM jsonb_array_elements(COALESCE(p_logs->'dropped', '[]')) AS e(j)) t
         WHERE EXISTS (SELECT 1 FROM runs x WHERE x.run_id = t.run_id)
         GROUP BY t.run_id
    LOOP
        INSERT INTO run_log_state(run_id, kept, dropped) VALUES (r.run_id, r.n, r.d)
        ON CONFLICT (run_id) DO UPDATE SET kept = run_log_state.kept + excluded.kept,
            dropped = run_log_state.dropped + excluded.dropped
        RETURNING kept INTO v_kept;
        v_excess := v_kept - v_max;
        IF v_excess > 0 THEN
            DELETE FROM run_logs WHERE log_id IN (
                SELECT log_id FROM run_logs WHERE run_id = r.run_id ORDER BY log_id LIMIT v_excess);
            UPDATE run_log_state SET kept = kept - v_excess, dropped = dropped + v_excess
             WHERE run_id = r.run_id;
        END IF;
    END LOOP;
    -- Item outcomes: the first 1,000 per subtask and outcome are kept
    -- (crate::logs::MAX_ITEM_OUTCOMES), all are counted.
    FOR r IN
        SELECT e.j->>'run_id' AS run_id, (e.j->>'subtask')::bigint AS subtask,
               e.j->>'subtask_uid' AS uid, e.j->>'outcome' AS outcome, e.j->>'key' AS item_key,
               e.j->>'reason' AS reason, (e.j->>'time')::timestamptz AS time,
               COALESCE((e.j->>'count')::bigint, 1) AS n, e.src
          FROM (SELECT j, ord, 1 AS src
                  FROM jsonb_array_elements(COALESCE(p_logs->'outcomes', '[]')) WITH ORDINALITY AS a(j, ord)
                UNION ALL
                SELECT j, ord, 2
                  FROM jsonb_array_elements(COALESCE(p_logs->'counted', '[]')) WITH ORDINALITY AS b(j, ord)) e
         ORDER BY e.src, e.ord
    LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM runs x WHERE x.run_id = r.run_id);
        v_number := COALESCE((SELECT s.subtask_number FROM subtasks s
                               WHERE s.run_id = r.run_id AND s.subtask_uid = r.uid), r.subtask);
        INSERT INTO item_outcome_counts(run_id, subtask_number, outcome, total, kept)
        VALUES (r.run_id, v_number, r.outcome, r.n, 0)
        ON CONFLICT (run_id, subtask_number, outcome)
            DO UPDATE SET total = item_outcome_counts.total + excluded.total
        RETURNING kept INTO v_kept;
        IF r.src = 1 AND v_kept < 1000 THEN
            INSERT INTO item_outcomes(run_id, subtask_number, outcome, item_key, reason, time,
                hostname, process_id)
            VALUES (r.run_id, v_number, r.outcome, r.item_key, r.reason, r.time, v_host, v_pid);
            UPDATE item_outcome_counts SET kept = kept + 1
             WHERE run_id = r.run_id AND subtask_number = v_number AND outcome = r.outcome;
        END IF;
    END LOOP;
END $$;
