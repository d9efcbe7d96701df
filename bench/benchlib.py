"""Helpers shared by the benchmarks: running commands and Ansible against a lab, counting what they cost."""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

STEP_TIMEOUT = 900

REPO = Path(__file__).resolve().parent.parent

LAB_PY = REPO / "lab" / "lab.py"

REPORT = REPO / "docs" / "benchmarks.md"

SLOWEST = 5


class BenchError(Exception):
    """A step failed; the message says which, with the tail of its output."""


def tool(name):
    """An executable from the project's virtualenv, else the one next to this Python, else from PATH."""
    for candidate in (REPO / ".venv" / "bin" / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BenchError("%s not found: run `make venv` first" % name)
    return found


def secs(value):
    """Seconds as a report shows them: two decimals below 10, one above."""
    return "%.2f" % value if abs(value) < 10 else "%.1f" % value


def machine(lab_name):
    """What the figures were measured on, with the load and the containers of other labs at the start."""
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.M).group(1))
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    core = re.search(r"core ([^\]\s]+)", command_output([tool("ansible-playbook"), "--version"]))
    others = [
        n for n in command_output(["docker", "ps", "--format", "{{.Names}}"]).split() if "-%s-" % lab_name not in n
    ]
    return {
        "CPUs (nproc)": "%d%s" % (len(os.sched_getaffinity(0)), " x %s" % model.group(1) if model else ""),
        "Memory": "%.1f GiB" % (mem_kib / 1024 / 1024),
        "Kernel": platform.release(),
        "Docker server": command_output(["docker", "version", "--format", "{{.Server.Version}}"]) or "unknown",
        "ansible-core": core.group(1) if core else "unknown",
        "Python": platform.python_version(),
        "Load average at start (1/5/15 min)": "%.2f / %.2f / %.2f" % os.getloadavg(),
        "Other containers running at start": str(len(others)),
    }


def tail(text, lines=40):
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(cmd, env=None, timeout=STEP_TIMEOUT):
    """Runs cmd from the repo root; returns (returncode, wall seconds, stdout and stderr together)."""
    start = time.monotonic()
    try:
        result = subprocess.run(
            cmd, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        raise BenchError("%s timed out after %d s:\n%s" % (" ".join(cmd[:3]), timeout, tail(output))) from None
    return result.returncode, time.monotonic() - start, result.stdout


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def span(values):
    """'4' when all values are equal, else 'low-high'."""
    low, high = min(values), max(values)
    fmt = "%d" if all(float(v).is_integer() for v in values) else "%.1f"
    return fmt % low if low == high else (fmt + "-" + fmt) % (low, high)


def verdict(ok):
    return "PASS" if ok else "MISS"


def lab(*args):
    rc, _, output = run([sys.executable, str(LAB_PY), *args], timeout=600)
    if rc != 0:
        raise BenchError("lab/lab.py %s failed:\n%s" % (args[0], tail(output)))


def ansible_env(control_dir, stats_path=None):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir),
    )
    if stats_path:
        env.update(ANSIBLE_CALLBACKS_ENABLED="swarmplane.cluster.run_stats", SWARMPLANE_RUN_STATS=str(stats_path))
    return env


def close_masters(control_dir):
    """Ends the SSH ControlMasters a step left behind, rather than letting them idle for ControlPersist."""
    for sock in control_dir.iterdir():
        if sock.is_socket():
            subprocess.run(
                ["ssh", "-o", "ControlPath=%s" % sock, "-O", "exit", "bench"], capture_output=True, timeout=30
            )


def changed_tasks(output):
    """Names of the tasks the default callback reported as changed, in order."""
    task, found = None, []
    for line in output.splitlines():
        header = re.match(r"(?:TASK|RUNNING HANDLER) \[(.*?)\] \*", line)
        if header:
            task = header.group(1)
        elif line.startswith("changed: [") and task not in found:
            found.append(task)
    return found


def command_output(cmd):
    try:
        return subprocess.run(cmd, text=True, capture_output=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def write_section(start, end, text):
    """Replaces one bench's section of docs/benchmarks.md (between its markers; appended if absent)."""
    report = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(report):
        report = pattern.sub(lambda _: text, report, count=1)
    else:
        report = report.rstrip("\n") + "\n\n" + text + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)


def guarded(work, teardown):
    """(work(), 0), with teardown() run whatever happens; (None, 1) when a step failed, (None, 130) on Ctrl-C."""
    try:
        return work(), 0
    except BenchError as exc:
        print("bench failed: %s" % exc, file=sys.stderr)
        return None, 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return None, 130
    finally:
        try:
            teardown()
        except BenchError as exc:
            print(exc, file=sys.stderr)
