"""Writes a run with Python's tasker into the database given as argv[1] (R reads it)."""
import sys

import tasker

t = tasker.connect(sys.argv[1])
with t.task("python", "writer", total_subtasks=1, message="written by Python") as run:
    with run.subtask("items", 1000) as st:
        for _ in range(1000):
            st.increment()
    print(run.run_id)
t.close()
