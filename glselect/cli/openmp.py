"""How torch's OpenMP threads wait, for the command line's own process.

Between parallel regions libgomp's threads spin on a core for a while before they sleep. On a
machine whose cores other programs are using, a spinning thread holds a core the thread it waits
for needs, and each of the many small operations of a path solve waits at its barrier for a
descheduled thread. Measured with ``benchmarks/shared_machine.py`` (Friedman #1 20,000 x 500, two
threads, beside two busy loops on 2 cores): 3.75x the quiet time with the default waiting, 1.98x
with ``OMP_WAIT_POLICY=PASSIVE`` (a fair share is 2x). On a quiet machine passive waiting costs
the hand-offs a sleep and a wake-up: 49 s -> 59 s on the same table. So the command line waits
passively only when other work is runnable at start-up. The setting is read when torch loads
libgomp, so it is made before anything imports torch, and only by the command line, which owns
its process; a user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` wins. The wait policy changes
no result: only how idle threads wait.
"""

from __future__ import annotations

import os

LOADAVG = "/proc/loadavg"
# other runnable tasks, as a share of this process's cores, from which the machine counts as busy
BUSY_SHARE = 0.5


def other_runnable_tasks(loadavg: str = LOADAVG) -> int | None:
    """Tasks runnable right now besides this one (the fourth field of /proc/loadavg, 'running/total'); None off Linux."""
    try:
        with open(loadavg) as handle:
            running = int(handle.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    return max(running - 1, 0)  # the reading process is running


def wait_passively_when_busy(loadavg: str = LOADAVG) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when other work is runnable on this process's cores; True if set."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    others = other_runnable_tasks(loadavg)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if others is None or others < BUSY_SHARE * cores:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
