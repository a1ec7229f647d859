"""A tracked Python process for tests/scale: like worker.c."""
import os
import time

import tasker

# Work takes a while (TASKER_TEST_WORK_MS per subtask), so that processes overlap.
pause = int(os.environ.get("TASKER_TEST_WORK_MS", "0")) / 4000
with tasker.task("scale", os.environ["TASKER_TEST_TASK"]) as run:
    for s in range(3):
        with run.subtask(f"part {s}", items_total=100) as st:
            for k in range(100):
                st.increment()
                if k % 25 == 0:
                    time.sleep(pause)
print("DONE", flush=True)
