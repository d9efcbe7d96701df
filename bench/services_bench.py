#!/usr/bin/env python3
"""How long services.yml takes to deploy 20 services, to re-apply them with nothing to change, and to scale one.

    python3 bench/services_bench.py            # 2 runs
    python3 bench/services_bench.py --runs 3

Every run removes and recreates the lab `sbench` (lab/lab.py, 1 manager + 2 workers, with the lab registry),
forms the swarm with cluster.yml (not timed), then times, in this order:

    ping     ansible swarm -m ansible.builtin.ping: what any Ansible run costs on these hosts
    deploy   services.yml with 20 services declared (s01..s20, lab-registry:5000/swarmplane/web:v1, 1 replica)
    no-op    services.yml again with the same declaration (the bench fails if anything changes)
    bare     services.yml with nothing declared (swarm_services: []): the play's own start-up
    cluster bare   cluster.yml with nothing declared: its no-op
    cluster noop   cluster.yml with the 20 services declared: its no-op, services included
    scale    services.yml -e '{"swarm_scale": {"s01": 10}}' after s01 was re-applied at 2 replicas (not timed);
             the module returns once the 10 tasks run

The declarations are passed as `-e @file.yml`. Each step starts without SSH ControlMasters (its own
control_path_dir), so each pays its own SSH set-up. Task times come from the swarmplane.cluster.run_stats
callback. The figures are printed and written to the "Services" section of docs/benchmarks.md (between the
services-bench markers; the rest of the file is left alone); the lab is removed at the end, also on failure
or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import yaml
from benchlib import (
    REPORT,
    SLOWEST,
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
    span,
    tail,
    tool,
    verdict,
    write_section,
)

LAB_NAME = "sbench"
HOSTS = ("manager-1", "worker-1", "worker-2")
MANAGER = HOSTS[0]
STEP_TIMEOUT = 600

IMAGE = "lab-registry:5000/swarmplane/web:v1"
COUNT = 20
NAMES = ["s%02d" % i for i in range(1, COUNT + 1)]
SCALED = NAMES[0]
SCALE_FROM, SCALE_TO = 2, 10

STEPS = ("deploy", "noop", "bare", "cluster_bare", "cluster_noop", "scale", "ping")
LABELS = {
    "form": "swarm formation (cluster.yml)",
    "prepare": "re-apply with %s at %d replicas" % (SCALED, SCALE_FROM),
    "ping": "ping floor",
    "deploy": "deploy 20",
    "noop": "no-op 20",
    "bare": "bare start-up",
    "extra": "no-op minus start-up",
    "cluster_bare": "cluster.yml no-op, none declared",
    "cluster_noop": "cluster.yml no-op, 20 declared",
    "cluster_extra": "cluster.yml: 20 minus none",
    "scale": "scale %d -> %d" % (SCALE_FROM, SCALE_TO),
}
# The services module's task in each playbook step (matched on the end of the task name).
MODULE_TASKS = {
    "deploy": "Create, update or scale services",
    "noop": "Create, update or scale services",
    "bare": "Create, update or scale services",
    "cluster_bare": "Create, update or scale services",
    "cluster_noop": "Create, update or scale services",
    "scale": "Scale services",
}

# Target from the issue: a no-op re-apply of 20 services under 5 s beyond the bare play start-up.
TARGET_EXTRA = 5.0
# Issue 9: keep that figure at what it was (2.09 s), and let cluster.yml's no-op with the declaration cost no more
# than its no-op without it plus as much.
KEEP_EXTRA = 2.09

START = "<!-- services-bench:start -->"
END = "<!-- services-bench:end -->"


@dataclass
class Step:
    seconds: float
    cpu: float  # CPU seconds (user + system) of the command and the children it waited for, on this machine
    stats: dict | None  # the run_stats JSON (playbook steps only)
    output: str


# ---------------------------------------------------------------- helpers


# ---------------------------------------------------------------- the lab


def lab_fresh(inventory):
    lab("down", "--name", LAB_NAME)
    lab("up", "--name", LAB_NAME, "--managers", "1", "--workers", "2", "--registry", "--inventory", str(inventory))


def on_manager(command):
    rc, _, output = run(["docker", "exec", "swarmplane-%s-%s" % (LAB_NAME, MANAGER), "sh", "-c", command], timeout=60)
    if rc != 0:
        raise BenchError("`%s` on %s failed:\n%s" % (command, MANAGER, tail(output)))
    return output


def check_services(replicas):
    """Every declared service exists with all its replicas running (`docker service ls` on the manager)."""
    listed = dict(
        line.split(None, 1) for line in on_manager("docker service ls --format '{{.Name}} {{.Replicas}}'").splitlines()
    )
    wrong = {
        name: listed.get(name, "missing")
        for name in NAMES
        if listed.get(name) != "%d/%d" % (replicas[name], replicas[name])
    }
    if wrong:
        raise BenchError("services not running as declared (name: running/desired): %s" % wrong)


def running_tasks(name):
    out = on_manager("docker service ps %s --filter desired-state=running --format '{{.CurrentState}}'" % name)
    return sum(1 for line in out.splitlines() if line.startswith("Running"))


# ---------------------------------------------------------------- declarations


def declaration(replicas):
    """swarm_services for the 20 bench services, replicas as given per name."""
    return {
        "swarm_services": [dict(name=name, image=IMAGE, replicas=replicas[name]) for name in NAMES],
    }


def write_vars(workdir, name, data):
    path = workdir / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return "@%s" % path


# ---------------------------------------------------------------- one measured step


def ansible_run(name, cmd, workdir, stats=True):
    """Runs one Ansible command in a fresh control_path_dir; fails the bench on a non-zero exit."""
    control_dir = workdir / ("cp-%s" % name)
    control_dir.mkdir()
    stats_path = workdir / ("%s.json" % name) if stats else None
    cpu_before = children_cpu()
    try:
        rc, seconds, output = run(cmd, env=ansible_env(control_dir, stats_path))
    finally:
        close_masters(control_dir)
    cpu = children_cpu() - cpu_before
    if rc != 0:
        raise BenchError("%s failed (rc %d); last lines:\n%s" % (LABELS.get(name, name), rc, tail(output)))
    if stats_path and not stats_path.exists():
        raise BenchError("%s wrote no run_stats JSON: is swarmplane.cluster.run_stats loadable?" % name)
    return Step(seconds, cpu, json.loads(stats_path.read_text()) if stats_path else None, output)


def recap_changed(output):
    """host -> changed= from the PLAY RECAP."""
    recap = output.split("PLAY RECAP")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", recap, re.M)}


def check_playbook(name, step, unchanged):
    """All hosts ran without failures; with unchanged, nothing changed anywhere (run_stats and the recap)."""
    counts = step.stats["hosts"]
    missing = [h for h in HOSTS if h not in counts]
    failed = [h for h in HOSTS if counts.get(h, {}).get("failed")]
    if missing or failed:
        raise BenchError(
            "%s: hosts not run %s, hosts with failed tasks %s; last lines:\n%s"
            % (LABELS[name], missing, failed, tail(step.output))
        )
    changed = {h: c["changed"] for h, c in counts.items() if c["changed"]}
    changed.update({h: n for h, n in recap_changed(step.output).items() if n})
    if unchanged and changed:
        raise BenchError(
            "the %s changed something: %s\nchanged tasks: %s\nlast lines:\n%s"
            % (LABELS[name], changed, changed_tasks(step.output), tail(step.output))
        )
    if not unchanged and not changed:
        raise BenchError("the %s changed nothing; last lines:\n%s" % (LABELS[name], tail(step.output)))


def one_run(workdir):
    inventory = workdir / "hosts.yml"
    lab_fresh(inventory)
    playbook = [tool("ansible-playbook"), "-i", str(inventory)]
    ansible_run("form", playbook + ["cluster.yml"], workdir, stats=False)  # not timed; rc 0 is enough
    ones = {name: 1 for name in NAMES}
    twenty = write_vars(workdir, "services-20.yml", declaration(ones))
    empty = write_vars(workdir, "services-none.yml", {"swarm_services": []})
    scaled_from = write_vars(workdir, "services-20-s01x%d.yml" % SCALE_FROM, declaration(dict(ones, s01=SCALE_FROM)))
    services = playbook + ["services.yml", "-e"]

    steps = {
        "ping": ansible_run(
            "ping", [tool("ansible"), "-i", str(inventory), "swarm", "-m", "ansible.builtin.ping"], workdir, False
        )
    }
    steps["deploy"] = ansible_run("deploy", services + [twenty], workdir)
    check_playbook("deploy", steps["deploy"], unchanged=False)
    check_services(ones)
    steps["noop"] = ansible_run("noop", services + [twenty], workdir)
    check_playbook("noop", steps["noop"], unchanged=True)
    steps["bare"] = ansible_run("bare", services + [empty], workdir)
    check_playbook("bare", steps["bare"], unchanged=True)
    for name, declared in (("cluster_bare", empty), ("cluster_noop", twenty)):
        steps[name] = ansible_run(name, playbook + ["cluster.yml", "-e", declared], workdir)
        check_playbook(name, steps[name], unchanged=True)

    check_playbook("prepare", ansible_run("prepare", services + [scaled_from], workdir), unchanged=False)
    check_services(dict(ones, s01=SCALE_FROM))
    steps["scale"] = ansible_run("scale", services + [json.dumps({"swarm_scale": {SCALED: SCALE_TO}})], workdir)
    check_playbook("scale", steps["scale"], unchanged=False)
    if running_tasks(SCALED) != SCALE_TO:
        raise BenchError("after the scale, %s runs %d tasks, not %d" % (SCALED, running_tasks(SCALED), SCALE_TO))
    return steps


# ---------------------------------------------------------------- summaries


def task_seconds(stats):
    """Seconds per task name (summed within the run)."""
    totals = {}
    for task in stats["tasks"]:
        totals[task["name"]] = totals.get(task["name"], 0.0) + task["seconds"]
    return totals


def module_seconds(step, name):
    return sum(s for task, s in task_seconds(step.stats).items() if task.endswith(MODULE_TASKS[name]))


def slowest_tasks(runs):
    """The no-op run's slowest tasks: seconds per task name, median over runs."""
    per_run = [task_seconds(r["noop"].stats) for r in runs]
    names = set().union(*per_run)
    medians = {n: median([t.get(n, 0.0) for t in per_run]) for n in names}
    ranked = sorted(medians.items(), key=lambda item: -item[1])
    return ranked[:SLOWEST], sum(medians.values())


def figures(values):
    return {"median": median(values), "min": min(values), "max": max(values)}


def summarize(runs):
    summary = {"runs": len(runs)}
    for step in STEPS:
        summary[step] = figures([r[step].seconds for r in runs])
        summary[step]["cpu"] = median([r[step].cpu for r in runs])
        if step != "ping":
            stats = [r[step].stats for r in runs]
            summary[step]["ran"] = [s["hosts"][h]["ran"] for s in stats for h in HOSTS]
            summary[step]["changed"] = [s["hosts"][h]["changed"] for s in stats for h in HOSTS]
            summary[step]["module"] = median([module_seconds(r[step], step) for r in runs])
            summary[step]["clock"] = median([s["seconds"] for s in stats])
    summary["extra"] = figures([r["noop"].seconds - r["bare"].seconds for r in runs])
    summary["cluster_extra"] = figures([r["cluster_noop"].seconds - r["cluster_bare"].seconds for r in runs])
    summary["slowest"], summary["task_seconds"] = slowest_tasks(runs)
    bare = [task_seconds(r["bare"].stats) for r in runs]
    summary["bare_tasks"] = {n: median([t.get(n, 0.0) for t in bare]) for n in set().union(*bare)}
    return summary


# ---------------------------------------------------------------- the machine


# ---------------------------------------------------------------- output


COLUMNS = ("median s", "min-max s", "tasks run/host", "changed/host", "controller CPU s")
ROWS = ("deploy", "noop", "bare", "extra", "cluster_bare", "cluster_noop", "cluster_extra", "scale", "ping")


def step_row(summary, step):
    """One row's figures, as strings in the order of COLUMNS."""
    s = summary[step]
    return (
        secs(s["median"]),
        ("%s to %s" if s["min"] < 0 else "%s-%s") % (secs(s["min"]), secs(s["max"])),
        span(s["ran"]) if "ran" in s else "-",
        span(s["changed"]) if "changed" in s else "-",
        secs(s["cpu"]) if "cpu" in s else "-",
    )


def targets(summary):
    extra = summary["extra"]["median"]
    cluster_extra = summary["cluster_extra"]["median"]
    return [
        (
            "no-op re-apply of %d services, beyond the bare play start-up" % COUNT,
            "< %g s" % TARGET_EXTRA,
            "%s s" % secs(extra),
            verdict(extra < TARGET_EXTRA),
        ),
        (
            "the same, kept at its earlier figure",
            "<= %g s" % KEEP_EXTRA,
            "%s s" % secs(extra),
            verdict(extra <= KEEP_EXTRA),
        ),
        (
            "cluster.yml no-op with the %d services declared, beyond its no-op without them" % COUNT,
            "<= %g s" % KEEP_EXTRA,
            "%s s" % secs(cluster_extra),
            verdict(cluster_extra <= KEEP_EXTRA),
        ),
    ]


def print_summary(summary):
    print("\n== services: 3 hosts (1 manager + 2 workers), %d service(s), %d run(s)" % (COUNT, summary["runs"]))
    fmt = "%-22s" + " %16s" * len(COLUMNS)
    print(fmt % ("", *COLUMNS))
    for row in ROWS:
        print(fmt % (LABELS[row], *step_row(summary, row)))
    for what, goal, measured, result in targets(summary):
        print("%s %s: %s (target %s)" % (result, what, measured, goal))
    print("slowest no-op tasks:")
    for name, seconds in summary["slowest"]:
        print("  %6s s  %s" % (secs(seconds), name))


def meaning(summary):
    noop, bare, extra, deploy, scale, ping = (summary[k] for k in ("noop", "bare", "extra", "deploy", "scale", "ping"))
    slowest_name, slowest_noop = summary["slowest"][0]
    slowest_bare = summary["bare_tasks"].get(slowest_name, 0.0)
    values = {
        "count": COUNT,
        "runs": summary["runs"],
        "noop": secs(noop["median"]),
        "bare": secs(bare["median"]),
        "extra": secs(extra["median"]),
        "extra_span": "%s to %s" % (secs(extra["min"]), secs(extra["max"])),
        "per_service": 1000 * extra["median"] / COUNT,
        "noop_module": secs(noop["module"]),
        "rest": secs(extra["median"] - (noop["module"] - bare["module"])),
        "bare_module": secs(bare["module"]),
        "slowest": slowest_name,
        "slowest_noop": secs(slowest_noop),
        "slowest_bare": secs(slowest_bare),
        "shared": ": it is part of every run, not a cost of the services" if slowest_bare >= 0.5 * slowest_noop else "",
        "noop_span": "%s-%s" % (secs(noop["min"]), secs(noop["max"])),
        "bare_span": "%s-%s" % (secs(bare["min"]), secs(bare["max"])),
        "bound": (
            ": most of the no-op's wall time is CPU work on the controller rather than waiting for the hosts"
            if noop["cpu"] / noop["median"] >= 0.7
            else ""
        ),
        "target": TARGET_EXTRA,
        "verdict": verdict(extra["median"] < TARGET_EXTRA),
        "margin": secs(abs(TARGET_EXTRA - extra["median"])),
        "side": "under" if extra["median"] < TARGET_EXTRA else "over",
        "cluster_bare": secs(summary["cluster_bare"]["median"]),
        "cluster_noop": secs(summary["cluster_noop"]["median"]),
        "cluster_extra": secs(summary["cluster_extra"]["median"]),
        "cluster_verdict": verdict(summary["cluster_extra"]["median"] <= KEEP_EXTRA),
        "keep": KEEP_EXTRA,
        "bare_clock": secs(bare["clock"]),
        "bare_outside": secs(bare["median"] - bare["clock"]),
        "bare_ping": bare["median"] / ping["median"],
        "ping": secs(ping["median"]),
        "deploy": secs(deploy["median"]),
        "deploy_module": secs(deploy["module"]),
        "deploy_rest": secs(deploy["median"] - deploy["module"]),
        "deploy_each": secs(deploy["module"] / COUNT),
        "scale": secs(scale["median"]),
        "scale_module": secs(scale["module"]),
        "scale_rest": secs(scale["median"] - scale["module"]),
        "added": SCALE_TO - SCALE_FROM,
        "scaled": SCALED,
        "from": SCALE_FROM,
        "to": SCALE_TO,
        "cpu_noop": secs(noop["cpu"]),
        "cpu_bare": secs(bare["cpu"]),
        "cpu_share": 100 * noop["cpu"] / noop["median"],
        "nproc": len(os.sched_getaffinity(0)),
    }
    text = [
        "- **No-op re-apply of %(count)d services: %(noop)s s** (median of %(runs)d), against %(bare)s s for the same "
        "play with nothing declared. The %(count)d services add %(extra)s s (%(extra_span)s over the runs), about "
        "%(per_service).0f ms each: %(verdict)s, %(margin)s s %(side)s the %(target)g s target.",
        '  The one module run that reads and compares all %(count)d live specs ("Create, update or scale services") '
        "took %(noop_module)s s of the no-op (%(bare_module)s s in the bare start-up, where it is skipped); the other "
        "%(rest)s s of the difference lie outside that task (templating the larger declaration for the other tasks, "
        "and run-to-run noise: the no-op ranged %(noop_span)s s, the bare start-up %(bare_span)s s).",
        '  The no-op\'s slowest task, "%(slowest)s" (%(slowest_noop)s s), took %(slowest_bare)s s in the bare '
        "start-up too%(shared)s.",
        "- **cluster.yml with the %(count)d services declared: %(cluster_noop)s s** for its no-op, against "
        "%(cluster_bare)s s with nothing declared: the declaration adds %(cluster_extra)s s (%(cluster_verdict)s "
        "against %(keep)g s). It adds more than to services.yml's bare start-up (%(extra)s s), which runs the "
        "services role with an empty declaration, where cluster.yml without one skips the role.",
        "- **Bare start-up: %(bare)s s**, %(bare_ping).1fx the %(ping)s s ping floor: the preflight probe of every "
        "host, picking a live manager and the declaration checks; %(bare_clock)s s inside the run_stats clock "
        "(playbook loading and tasks), %(bare_outside)s s outside it (Python start-up, imports, configuration, "
        "inventory). Every services.yml run pays it, whatever is declared.",
        "- **Deploy of %(count)d services: %(deploy)s s.** The services module took %(deploy_module)s s of it (about "
        "%(deploy_each)s s per service): creating the services, each lab host pulling the image from the lab registry "
        "the first time, and waiting until every service runs its replica; the other %(deploy_rest)s s are the "
        "play's start-up and the other tasks.",
        "- **Scale %(scaled)s from %(from)d to %(to)d replicas: %(scale)s s** until the module returned with the "
        "%(to)d tasks running. The scale task took %(scale_module)s s (scheduling and starting %(added)d tasks, on "
        "hosts that had pulled the image for the other services, and waiting until they run); the other "
        "%(scale_rest)s s are the start-up (the scale path skips the networks, secrets and configs tasks).",
        "- On the controller, ansible-playbook and the processes it waited for used %(cpu_noop)s CPU-seconds in the "
        "no-op (%(cpu_share).0f %% of its wall time; the bare start-up used %(cpu_bare)s), on %(nproc)d CPUs that the "
        "lab hosts share%(bound)s.",
        "- Every no-op and bare start-up (of services.yml and of cluster.yml) reported changed=0 on every host in every "
        "run: the bench fails otherwise.",
    ]
    return [line % values for line in text]


def section(summary, info, argv, elapsed):
    lines = [
        START,
        "## Services",
        "",
        "Written by `bench/services_bench.py`, which replaces only this section (between its markers); do not edit "
        "by hand, re-run it.",
        "",
        "```sh",
        "python3 bench/services_bench.py --runs 2",
        "```",
        "",
        "Every run recreates the lab `sbench` (1 manager + 2 workers, with the lab registry) and forms the swarm "
        "with `cluster.yml` (not timed). It then times `ansible swarm -m ansible.builtin.ping` (the ping floor) and "
        "`services.yml` four times and `cluster.yml` twice: with %d services declared, `s01`..`s%02d` (`%s`, 1 replica, no published ports), "
        "on the new swarm (deploy 20); the same declaration again (no-op 20, which must report changed=0 on every "
        "host); with `swarm_services: []` (bare start-up, the play with nothing to apply); `cluster.yml` with nothing "
        "declared and with the 20 services (its no-op without and with the declaration); and, after `s01` was "
        're-applied at %d replicas (not timed), `-e \'{"swarm_scale": {"s01": %d}}\'` (scale %d -> %d, which '
        "returns once the new tasks run). Declarations are passed as `-e @file.yml`. Each step starts without SSH "
        "ControlMasters, so each pays its own SSH set-up. Task times come from the `swarmplane.cluster.run_stats` "
        "callback." % (COUNT, COUNT, IMAGE, SCALE_FROM, SCALE_TO, SCALE_FROM, SCALE_TO),
        "",
        "### Machine and command",
        "",
        "Measured %s with `%s` (the whole bench took %.1f min)."
        % (datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), " ".join(argv), elapsed / 60),
        "",
    ]
    lines += ["- %s: %s" % item for item in info.items()]
    lines += [
        "",
        "### Timings",
        "",
        "Wall time of each step on 3 hosts (1+2); counts are per host, over all hosts and runs (one figure when all "
        "are equal). No-op minus start-up is taken within each run, then the median. Controller CPU is the median "
        "CPU time of the command and the processes it waited for.",
        "",
        "| Step | %s |" % " | ".join(COLUMNS),
        "|---|" + "---:|" * len(COLUMNS),
    ]
    lines += ["| %s | %s |" % (LABELS[row], " | ".join(step_row(summary, row))) for row in ROWS]
    lines += [
        "",
        "### Target",
        "",
        "From the issue.",
        "",
        "| Target | Goal | Measured (median) | |",
        "|---|---|---:|---|",
    ]
    lines += ["| %s | %s | %s | %s |" % row for row in targets(summary)]
    lines += ["", "### Slowest tasks of the services no-op", "", "| Task | Seconds (median) |", "|---|---:|"]
    lines += ["| %s | %s |" % (name.replace("|", "\\|"), secs(seconds)) for name, seconds in summary["slowest"]]
    lines += ["", "Task time of the no-op in all: %s s." % secs(summary["task_seconds"])]
    lines += ["", "### What the services figures say", ""]
    lines += meaning(summary)
    lines += [END]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs, each on a new lab (default 2)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def bench(runs):
    results = []
    with tempfile.TemporaryDirectory(prefix="swarmplane-sbench-") as tmp:
        for index in range(1, runs + 1):
            workdir = Path(tmp) / str(index)
            workdir.mkdir()
            steps = one_run(workdir)
            results.append(steps)
            shown = ", ".join("%s %s s" % (LABELS[s], secs(steps[s].seconds)) for s in STEPS)
            print("run %d/%d: %s" % (index, runs, shown), flush=True)
    return summarize(results)


def remove_lab():
    print("removing the lab '%s'" % LAB_NAME, flush=True)
    lab("down", "--name", LAB_NAME)


def main():
    args = parse_args()
    started = time.monotonic()
    info = machine(LAB_NAME)
    print("machine: " + "; ".join("%s %s" % item for item in info.items()), flush=True)
    summary, code = guarded(lambda: bench(args.runs), remove_lab)
    if code:
        return code
    elapsed = time.monotonic() - started
    print_summary(summary)
    write_section(START, END, section(summary, info, ["python3", "bench/services_bench.py", *sys.argv[1:]], elapsed))
    print(
        "\nwritten: %s (section between %s and %s); the bench took %.1f min" % (REPORT.name, START, END, elapsed / 60)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
