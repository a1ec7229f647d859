"""Prints what Python's tasker reads from argv[1]: one line per run, then per subtask."""
import sys

import tasker

t = tasker.connect(sys.argv[1])
for r in t.history():
    print("run", r.stage_name, r.task_name, str(r.status.value if hasattr(r.status, "value") else r.status))
    for s in t.subtasks(r.run_id):
        print("subtask", s.subtask_name, s.items_complete, str(s.status.value if hasattr(s.status, "value") else s.status))
