-- tasker schema, version 2 (PostgreSQL): a failed subtask keeps the detail of its
-- error (a traceback, say), as a failed run does; progress batches are applied
-- exactly once, also when the answer to their COMMIT was lost.
ALTER TABLE subtasks ADD COLUMN error_detail text;

-- The last progress batch applied for each writer (a tracker in one process).
CREATE TABLE progress_writers (
    writer_id  text PRIMARY KEY,
    seq        bigint NOT NULL,
    last_seen  timestamptz NOT NULL
);

-- o_code: ok, no_run, run_done (o_status: the run's), exists (o_number taken).
CREATE OR REPLACE FUNCTION subtask_start(
    p_run text, p_name text, p_number bigint, p_items_total bigint, p_message text,
    p_restart boolean, p_now timestamptz, p_lock_ns integer, p_lock_key integer,
    OUT o_code text, OUT o_status text, OUT o_number bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_run text;
    v_prev text;
BEGIN
    SELECT status INTO v_run FROM runs WHERE run_id = p_run FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'no_run';
        RETURN;
    END IF;
    IF v_run IN ('COMPLETED','FAILED','SKIPPED','CANCELLED') THEN
        o_code := 'run_done';
        o_status := v_run;
        RETURN;
    END IF;
    IF p_number IS NULL THEN
        SELECT COALESCE(MAX(subtask_number), 0) + 1 INTO o_number FROM subtasks WHERE run_id = p_run;
    ELSE
        o_number := p_number;
        SELECT status INTO v_prev FROM subtasks WHERE run_id = p_run AND subtask_number = p_number;
    END IF;
    IF v_prev IS NOT NULL AND NOT p_restart THEN
        o_code := 'exists';
        RETURN;
    END IF;
    IF v_prev IS NOT NULL THEN
        UPDATE subtasks SET subtask_name = p_name, status = 'STARTED', start_time = p_now,
            end_time = NULL, last_update = p_now, items_total = p_items_total, items_complete = 0,
            percent = NULL, message = p_message, error_message = NULL, error_detail = NULL
         WHERE run_id = p_run AND subtask_number = o_number;
    ELSE
        INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, start_time,
            last_update, items_total, message)
        VALUES (p_run, o_number, p_name, 'STARTED', p_now, p_now, p_items_total, p_message);
    END IF;
    PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
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
    o_code := 'ok';
    o_status := v_prev;
END $$;

DROP FUNCTION subtask_transition(text, bigint, text, text[], text, text, boolean, timestamptz, integer, integer);

-- o_code: ok, no_run, no_subtask, invalid; o_status: the subtask's old status.
CREATE FUNCTION subtask_transition(
    p_run text, p_number bigint, p_to text, p_allowed text[], p_message text, p_error text,
    p_detail text, p_reset boolean, p_now timestamptz, p_lock_ns integer, p_lock_key integer,
    OUT o_code text, OUT o_status text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM 1 FROM runs WHERE run_id = p_run FOR UPDATE;
    IF NOT FOUND THEN
        o_code := 'no_run';
        RETURN;
    END IF;
    SELECT status INTO o_status FROM subtasks WHERE run_id = p_run AND subtask_number = p_number;
    IF NOT FOUND THEN
        o_code := 'no_subtask';
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
     WHERE run_id = p_run AND subtask_number = p_number;
    PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
    INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
    VALUES (p_now, p_run, p_number, CASE WHEN p_reset THEN 'reset' ELSE 'subtask' END, o_status,
            p_to, COALESCE(p_error, p_message));
    o_code := 'ok';
END $$;

DROP FUNCTION apply_progress(text[], bigint[], bigint[], bigint[], bigint[], double precision[],
    text[], bigint[], text[], text[], timestamptz, integer, integer);

-- One progress flush: element i of the arrays is one update (p_subtasks[i] NULL:
-- run-level progress). Locks every run it touches (p_lock_runs, sorted) first.
-- With p_writer, batch p_seq of that writer is applied only if no batch with that
-- number or a later one was: a flush whose COMMIT went through but whose answer was
-- lost with the connection is sent again, and must not count twice.
CREATE FUNCTION apply_progress(
    p_runs text[], p_subtasks bigint[], p_set bigint[], p_delta bigint[], p_total bigint[],
    p_percent double precision[], p_message text[], p_current bigint[],
    p_beats text[], p_lock_runs text[], p_now timestamptz,
    p_lock_ns integer, p_lock_key integer, p_writer text, p_seq bigint)
RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_events boolean := false;
    v_moved integer;
BEGIN
    IF p_writer IS NOT NULL THEN
        INSERT INTO progress_writers AS w (writer_id, seq, last_seen)
        VALUES (p_writer, p_seq, p_now)
        ON CONFLICT (writer_id) DO UPDATE SET seq = EXCLUDED.seq, last_seen = EXCLUDED.last_seen
            WHERE w.seq < EXCLUDED.seq;
        IF NOT FOUND THEN
            RETURN; -- applied before
        END IF;
        IF p_seq = 1 THEN
            DELETE FROM progress_writers WHERE last_seen < p_now - interval '30 days';
        END IF;
    END IF;
    PERFORM 1 FROM runs WHERE run_id = ANY (p_lock_runs) ORDER BY run_id COLLATE "C" FOR UPDATE;
    FOR i IN 1 .. COALESCE(array_length(p_runs, 1), 0) LOOP
        IF p_subtasks[i] IS NOT NULL THEN
            UPDATE subtasks SET
                items_complete = COALESCE(p_set[i], items_complete) + p_delta[i],
                items_total = COALESCE(p_total[i], items_total),
                percent = COALESCE(p_percent[i], percent),
                message = COALESCE(p_message[i], message),
                last_update = p_now
             WHERE run_id = p_runs[i] AND subtask_number = p_subtasks[i];
            UPDATE subtasks SET status = 'RUNNING'
             WHERE run_id = p_runs[i] AND subtask_number = p_subtasks[i] AND status = 'STARTED';
            GET DIAGNOSTICS v_moved = ROW_COUNT;
            IF v_moved > 0 THEN
                IF NOT v_events THEN
                    PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
                    v_events := true;
                END IF;
                INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
                VALUES (p_now, p_runs[i], p_subtasks[i], 'subtask', 'STARTED', 'RUNNING', NULL);
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
            IF NOT v_events THEN
                PERFORM pg_advisory_xact_lock(p_lock_ns, p_lock_key);
                v_events := true;
            END IF;
            INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
            VALUES (p_now, p_runs[i], NULL, 'run', 'STARTED', 'RUNNING', NULL);
        END IF;
    END LOOP;
    IF COALESCE(array_length(p_beats, 1), 0) > 0 THEN
        UPDATE runs SET heartbeat_time = p_now WHERE run_id = ANY (p_beats);
    END IF;
END $$;
