#!/usr/bin/env python3
"""What adding and removing one worker costs, next to a full cluster.yml no-op on the same swarm.

    make bench
    python3 bench/lifecycle_bench.py --sizes 3,10

For each size, the lab `lbench` (lab/lab.py, with the lab registry) is created with that many hosts and formed
by cluster.yml, with a service of one task more than hosts spread over them (untimed). Then, timed:

    no-op    cluster.yml with nothing to change (the bench fails if anything changes)
    add      one more host joins: scale.yml --limit <it>; the bench fails if a task runs on any other host
    remove   the service grows by one task, which the swarm places on the new node (untimed); then
             remove-node.yml -e node=<it> -e skip_confirmation=true: drain and wait until that task runs
             elsewhere, leave, node rm

The goal: adding one host costs what that host's own work costs, not a pass over every host, so `add` and
`remove` stay about the same from 3 to 10 hosts while the no-op grows. Each step starts without SSH
ControlMasters. The figures are printed and written to docs/benchmarks.md; the lab is removed at the end, also
on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml
from benchlib import (
    BenchError,
    ansible_env,
    changed_tasks,
    children_cpu,
    close_masters,
    guarded,
    lab,
    machine,
    run,
    secs,
    tail,
    tool,
    write_section,
)

LAB_NAME = "lbench"
SERVICE = "spread"
IMAGE = "lab-registry:5000/swarmplane/web:v1"
STEPS = ("noop", "add", "remove")
LABELS = {"noop": "cluster.yml no-op", "add": "scale.yml: add one worker", "remove": "remove-node.yml: remove it"}
START, END = "<!-- lifecycle-bench:start -->", "<!-- lifecycle-bench:end -->"


def layout(size):
    """(managers, workers) before the added worker: 3 -> 1 + 2, 10 -> 3 + 7."""
    managers = 1 if size < 5 else 3
    return managers, size - managers


def lab_up(managers, workers, inventory):
    """Creates the lab, or adds the hosts it lacks; writes its inventory."""
    lab(
        "up",
        "--name",
        LAB_NAME,
        "--registry",
        "--managers",
        str(managers),
        "--workers",
        str(workers),
        "--inventory",
        str(inventory),
    )


def on_manager(command):
    rc, _, output = run(["docker", "exec", "swarmplane-%s-manager-1" % LAB_NAME, "sh", "-c", command], timeout=300)
    if rc != 0:
        raise BenchError("on manager-1: %s failed:\n%s" % (command, tail(output)))
    return output


def running_on(node):
    out = on_manager("docker node ps %s --filter desired-state=running --format '{{.Name}}'" % node)
    return [line for line in out.splitlines() if line.startswith(SERVICE + ".")]


def ansible_step(name, cmd, workdir):
    """One timed Ansible command in its own control_path_dir: dict(seconds, cpu, stats, output)."""
    control_dir = workdir / ("cp-%s-%d" % (name, time.monotonic_ns()))
    control_dir.mkdir()
    stats_path = control_dir.with_suffix(".json")
    cpu_before = children_cpu()
    try:
        rc, seconds, output = run(cmd, env=ansible_env(control_dir, stats_path))
    finally:
        close_masters(control_dir)
    if rc != 0:
        raise BenchError("%s failed (rc %d); last lines:\n%s" % (LABELS.get(name, name), rc, tail(output)))
    stats = json.loads(stats_path.read_text())
    return dict(seconds=seconds, cpu=children_cpu() - cpu_before, stats=stats, output=output)


def changed_hosts(step):
    return {h: c["changed"] for h, c in step["stats"]["hosts"].items() if c["changed"]}


def one_size(size, workdir):
    managers, workers = layout(size)
    inventory = workdir / ("hosts-%d.yml" % size)
    playbook = [tool("ansible-playbook"), "-i", str(inventory)]
    lab("down", "--name", LAB_NAME)
    lab_up(managers, workers, inventory)
    declaration = workdir / ("services-%d.yml" % size)
    declaration.write_text(yaml.safe_dump(dict(swarm_services=[dict(name=SERVICE, image=IMAGE, replicas=size + 1)])))
    ansible_step("form", playbook + ["cluster.yml"], workdir)
    ansible_step("deploy", playbook + ["services.yml", "-e", "@%s" % declaration], workdir)

    steps = {"noop": ansible_step("noop", playbook + ["cluster.yml"], workdir)}
    if changed_hosts(steps["noop"]):
        raise BenchError(
            "the no-op changed something: %s (%s)"
            % (changed_hosts(steps["noop"]), changed_tasks(steps["noop"]["output"]))
        )

    new = "worker-%d" % (workers + 1)
    lab_up(managers, workers + 1, inventory)
    steps["add"] = ansible_step("add", playbook + ["scale.yml", "--limit", new], workdir)
    touched = sorted(steps["add"]["stats"]["hosts"])
    if touched != [new]:
        raise BenchError("scale.yml --limit %s ran tasks on %s" % (new, touched))

    on_manager("docker service scale -d %s=%d >/dev/null" % (SERVICE, size + 2))
    deadline = time.monotonic() + 120
    while not running_on(new):
        if time.monotonic() > deadline:
            raise BenchError("the added task was not placed on %s within 120 s" % new)
        time.sleep(1)
    moving = running_on(new)
    steps["remove"] = ansible_step(
        "remove", playbook + ["remove-node.yml", "-e", "node=%s" % new, "-e", "skip_confirmation=true"], workdir
    )
    if new in on_manager("docker node ls --format '{{.Hostname}}'").split():
        raise BenchError("%s is still a node after remove-node.yml" % new)
    return dict(size=size, layout=(managers, workers), new=new, moved=len(moving), steps=steps)


# ---------------------------------------------------------------- output


def step_figures(result, name):
    step = result["steps"][name]
    hosts = step["stats"]["hosts"]
    return (
        secs(step["seconds"]),
        str(len(hosts)),
        str(sum(c["ran"] for c in hosts.values())),
        str(sum(c["changed"] for c in hosts.values())),
        secs(step["cpu"]),
    )


COLUMNS = ("seconds", "hosts with tasks", "tasks run", "changed", "controller CPU s")


def print_results(results):
    fmt = "%-12s %-28s" + " %16s" * len(COLUMNS)
    print(fmt % ("hosts", "step", *COLUMNS))
    for r in results:
        for name in STEPS:
            print(fmt % ("%d (%d+%d)" % (r["size"], *r["layout"]), LABELS[name], *step_figures(r, name)))


def meaning(results):
    lines = []
    for r in results:
        s = {n: r["steps"][n]["seconds"] for n in STEPS}
        lines.append(
            "- **%d hosts (%d + %d).** Adding %s took %s s (%.2fx the %s s no-op of the whole cluster), with tasks "
            "on that host only; removing it, with its %d task(s) drained to other nodes first, took %s s (%.2fx)."
            % (
                r["size"],
                *r["layout"],
                r["new"],
                secs(s["add"]),
                s["add"] / s["noop"],
                secs(s["noop"]),
                r["moved"],
                secs(s["remove"]),
                s["remove"] / s["noop"],
            )
        )
    if len(results) > 1:
        small, large = results[0], results[-1]

        def grew(name):
            return large["steps"][name]["seconds"] / small["steps"][name]["seconds"]

        flat = max(grew("add"), grew("remove")) < 1.25 <= grew("noop")
        lines.append(
            "- **From %d to %d hosts:** the no-op grew x%.2f, adding one host x%.2f, removing one x%.2f: %s"
            % (
                small["size"],
                large["size"],
                grew("noop"),
                grew("add"),
                grew("remove"),
                "adding and removing a host cost that host's work (and the managers' lookups), not a pass over every "
                "host."
                if flat
                else "adding or removing a host grew with the cluster (target: under x1.25 while the no-op grows).",
            )
        )
    return lines


def section(results, info, argv):
    lines = [
        START,
        "## Node lifecycle: adding and removing one worker",
        "",
        "`%s` (%s). Each size is a lab of its own with the lab registry, formed by cluster.yml, running a service "
        "`%s` of one task more than hosts; one run per size on a machine the lab hosts share, so read the ratios "
        "more than the seconds. `remove` includes draining the task the swarm placed on the new node and waiting "
        "until it runs elsewhere; it reads every manager (the quorum check) besides the node it removes."
        % (" ".join(["python3", "bench/lifecycle_bench.py", *argv]), info["date"], SERVICE),
        "",
        "| Hosts | Step | %s |" % " | ".join(COLUMNS),
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for r in results:
        for name in STEPS:
            hosts = "%d (%d+%d)" % (r["size"], *r["layout"])
            lines.append("| %s | %s | %s |" % (hosts, LABELS[name], " | ".join(step_figures(r, name))))
    lines += ["", "Machine: " + "; ".join("%s %s" % kv for kv in info["machine"].items()) + ".", ""]
    lines += meaning(results)
    return "\n".join(lines + [END])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3,10", help="comma-separated host counts before the added worker")
    return parser.parse_args()


def main():
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    info = dict(machine=machine(LAB_NAME), date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    def work():
        with tempfile.TemporaryDirectory(prefix="swarmplane-lbench-") as tmp:
            results = [one_size(size, Path(tmp)) for size in sizes]
        print_results(results)
        print("\n".join(meaning(results)))
        write_section(START, END, section(results, info, sys.argv[1:]))
        return results

    _, code = guarded(work, lambda: lab("down", "--name", LAB_NAME))
    return code


if __name__ == "__main__":
    sys.exit(main())
