# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Aggregate callback: per-task wall time and per-host task counts, written as JSON for bench/."""

from __future__ import annotations

DOCUMENTATION = r"""
name: run_stats
type: aggregate
short_description: Per-task wall time and per-host task counts, written to a JSON file
description:
  - Records how long each task took across all hosts, how many tasks ran on each host (skipped ones apart),
    and how many of them changed something. Used by bench/ to explain where a run spends its time.
  - Writes nothing unless SWARMPLANE_RUN_STATS names a file.
requirements:
  - enable with callbacks_enabled = swarmplane.cluster.run_stats
options:
  output_path:
    description: File the JSON report is written to at the end of the run.
    env:
      - name: SWARMPLANE_RUN_STATS
    type: path
"""

import json
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "swarmplane.cluster.run_stats"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started = time.monotonic()
        self.tasks = []
        self.current = None
        self.hosts = {}

    def _close_task(self):
        if self.current is not None:
            self.current["seconds"] = round(time.monotonic() - self.current.pop("_start"), 3)
            self.tasks.append(self.current)
            self.current = None

    def _open_task(self, task, handler=False):
        self._close_task()
        self.current = dict(name=task.get_name(), _start=time.monotonic())
        if handler:
            self.current["handler"] = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._open_task(task)

    # Handlers start through their own hook, without is_conditional: their time is their own, not the task before.
    def v2_playbook_on_handler_task_start(self, task):
        self._open_task(task, handler=True)

    def _count(self, result, outcome):
        host = self.hosts.setdefault(result._host.get_name(), dict(ran=0, changed=0, skipped=0, failed=0))
        host[outcome] += 1
        if outcome == "ran" and result._result.get("changed"):
            host["changed"] += 1

    def v2_runner_on_ok(self, result):
        self._count(result, "ran")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._count(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._count(result, "failed")

    def v2_playbook_on_stats(self, stats):
        self._close_task()
        path = self.get_option("output_path")
        if not path:
            return
        report = dict(
            seconds=round(time.monotonic() - self.started, 3),
            tasks=self.tasks,
            hosts=self.hosts,
        )
        with open(path, "w") as handle:
            json.dump(report, handle, indent=1)
