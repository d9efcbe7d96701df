"""The run_stats callback in a real ansible-playbook run on localhost (no host is contacted): a handler's time is
recorded as its own task, not added to the task before it."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Quick task that notifies
      ansible.builtin.command: "true"
      changed_when: true
      notify: Slow handler
    - name: Skipped task
      ansible.builtin.debug:
        msg: never
      when: false
  handlers:
    - name: Slow handler
      ansible.builtin.command: sleep 3
      changed_when: false
"""


def test_a_handler_is_a_task_of_its_own_with_its_own_time(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    report = tmp_path / "stats.json"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_CALLBACKS_ENABLED="swarmplane.cluster.run_stats",
        SWARMPLANE_RUN_STATS=str(report),
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            str(playbook),
            "-e",
            "ansible_python_interpreter=%s" % sys.executable,
        ],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stderr and "callback" not in done.stderr.lower(), done.stderr
    stats = json.loads(report.read_text())
    tasks = {t["name"]: t for t in stats["tasks"]}
    # Relative, not a fixed bound: on a loaded machine the quick task alone can take a second. Were the handler's
    # time added to it, it would take longer than the handler.
    assert tasks["Slow handler"]["handler"] is True and tasks["Slow handler"]["seconds"] >= 3
    assert tasks["Quick task that notifies"]["seconds"] < tasks["Slow handler"]["seconds"]
    assert "handler" not in tasks["Quick task that notifies"]
    assert stats["hosts"]["localhost"] == dict(ran=2, changed=1, skipped=1, failed=0)
