"""Schedules used by the scheduler tests (real schedules arrive with the jobs they enqueue).

The subprocess tests point ``SCHEDULER_SCHEDULES`` at ``tests.scheduler.jobs:PROCESS_SCHEDULES``.
"""

from __future__ import annotations

from datetime import timedelta

from prosaas_common.jobs import Queue
from prosaas_scheduler.schedule import Schedule

TEST_JOB = "scheduler_test_job"

# Every second, catching up every missed slot: across a leader change the enqueued slots must form an
# unbroken run, each slot exactly once.
PROCESS_SCHEDULES = [
    Schedule(
        name="every-second", job=TEST_JOB, queue=Queue.LOW, every=timedelta(seconds=1), on_missed="run_all"
    ),
]

HOURLY = Schedule(name="hourly", job=TEST_JOB, queue=Queue.DEFAULT, every=timedelta(hours=1))

DUPLICATE_NAMES = [HOURLY, HOURLY]
NOT_A_LIST = HOURLY
