"""A Python worker on a shared run (tests/outage): like worker.c. With
TASKER_TEST_EXIT_IN_OUTAGE it waits for the file `down`, starts 10 subtasks while
the database is away and exits (its writes stay in a spool file)."""
import os
import sys
import time

import tasker

ITEMS = 40


def main() -> None:
    signals = os.environ["TASKER_TEST_SIGNALS"]
    tag = os.environ["TASKER_TEST_TAG"]
    exits_in_outage = bool(os.environ.get("TASKER_TEST_EXIT_IN_OUTAGE"))
    run = tasker.connect().attach(os.environ["TASKER_TEST_RUN"])
    if exits_in_outage:
        while not os.path.exists(os.path.join(signals, "down")):
            time.sleep(0.005)
    i = 0
    while (i < 10) if exits_in_outage else not os.path.exists(os.path.join(signals, "stop")):
        name = f"{tag}-{i}"
        st = run.subtask(name, items_total=ITEMS)
        for k in range(ITEMS):
            st.increment()
            if k % 10 == 0:
                time.sleep(0.002)
        st.complete("done")
        print(f"SUBTASK {name} {st.number}", flush=True)
        i += 1
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
