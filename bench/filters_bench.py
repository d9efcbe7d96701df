#!/usr/bin/env python3
"""How the time of the filter plugins that loop over hosts grows with the number of hosts (controller side only).

    python3 bench/filters_bench.py
    python3 bench/filters_bench.py --sizes 250,1000,2500,5000 --repeat 3

No lab, no Ansible run: for each size N the bench builds, in memory, the hostvars and groups a run of the plays
sees on a formed swarm of N hosts, and calls the filters with the arguments the plays give them. The swarm:
3 managers below 1000 hosts, 5 from 1000 on, the rest workers, and two load balancers outside it (edge_lb);
every host's `swarm_probe` is what swarm_info returns (preflight: nodes=true, host_facts=true) for an active
member, the managers' with the full node list of N rows, as the leader's is; addresses are unique (10.1.x.y), the
fabric is declared (fabric_subnet, each host already holding its fabric0 address, as on a re-run) and three
services publish ingress ports. Workers carry node labels the inventory also declares, so the reconcile plan
compares them.

Each filter's result is checked (preflight finds nothing wrong, the reconcile plan and the stale entries are
empty, the removal plan removes exactly the one worker named, ...), so the figures are of the real work, not of an
early error path. A second inventory has 1% of the workers unreachable (their probe is
`{unreachable: true, msg}`, their node rows Down): the paths that look addresses up in the managers' node lists.

Timing: time.perf_counter, the garbage collector off during the call (as timeit does); a call under 50 ms is
repeated in a loop to time it. All inventories are built first, then --repeat rounds take one sample of every
filter at every size, so a burst of other work on the machine spoils one sample of many filters, not all of one;
the figure is the best sample (fewer samples once those of one filter at one size took 10 s). The growth of each
filter is time(largest size) / time(base size), base the second size given (1000 by default), against the ratio
of the host counts: within 1.5x of it is linear, above it super-linear. Plain dicts stand in for Ansible's hostvars, whose lookups cost more (templating) but once per
lookup, so the growth is the filters' own. The figures are printed and written to docs/benchmarks.md, between
the filters-bench markers.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchlib import BenchError, guarded, machine, secs, write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".collections"))

from ansible_collections.swarmplane.cluster.plugins.filter import dataplane, lifecycle, services, swarm  # noqa: E402
from ansible_collections.swarmplane.cluster.plugins.modules.swarm_info import unavailable_result  # noqa: E402

START, END = "<!-- filters-bench:start -->", "<!-- filters-bench:end -->"
LEADER = "manager-1"
ENGINE = "27.3.1"
CLUSTER_ID = "kx2b5nmm6n0d3b9rj4vcdq1zq"
FABRIC_SUBNET = "10.200.0.0/16"
VIPS = {"lb-1": "10.250.0.1", "lb-2": "10.250.0.2"}
SERVICES = [
    dict(name="web", image="registry.example/web:1", publish=[dict(published=80, target=8080)]),
    dict(name="api", image="registry.example/api:1", publish=[dict(published=8443, target=443)]),
    dict(name="dns", image="registry.example/dns:1", publish=[dict(published=53, target=53, protocol="udp")]),
]
MIN_SAMPLE = 0.05  # seconds: a faster call is looped to time it
BUDGET = 10.0  # seconds of samples per filter and size before taking fewer than --repeat
LINEAR_SLACK = 1.5
REFERENCE = "reference: read each host's probe once"


# ---------------------------------------------------------------- the synthetic inventory


def layout(size):
    """(managers, workers): 3 managers below 1000 hosts, 5 from 1000 on."""
    managers = 3 if size < 1000 else 5
    return managers, size - managers


def address(index):
    """A unique IPv4 address per host: 10.1.0.1, ..., 10.1.0.250, 10.1.1.1, ..."""
    return "10.1.%d.%d" % (index // 250, index % 250 + 1)


def node_id(host):
    return hashlib.sha256(host.encode()).hexdigest()[:25]


def host_facts(addr, fabric_addr):
    """swarm_info's host facts (host_facts=true) of a Debian host with Docker, on a re-run (fabric0 is there)."""
    interface_ipv4 = {"eth0": addr, "docker0": "172.17.0.1", "docker_gwbridge": "172.18.0.1"}
    if fabric_addr:
        interface_ipv4["fabric0"] = fabric_addr
    return dict(
        all_ipv4_addresses=list(interface_ipv4.values()),
        all_ipv6_addresses=[],
        interfaces=["lo", *interface_ipv4],
        interface_ipv4=interface_ipv4,
        default_ipv4=dict(interface="eth0", address=addr),
        service_mgr="systemd",
        apparmor=True,
        ipvs=True,
        esp=True,
        kernel="6.1.0-28-amd64",
        os_family="Debian",
        distribution="Debian GNU/Linux",
    )


def labels(index):
    return {"zone": "z%d" % (index % 3), "disk": "ssd"}


def node_rows(managers, workers, addresses, down):
    """The node list as swarm_info returns it: managers first, then by hostname."""
    rows = []
    for host in managers + workers:
        is_manager = host in managers
        rows.append(
            dict(
                id=node_id(host),
                hostname=host,
                status="Down" if host in down else "Ready",
                availability="Active",
                manager_status=("Leader" if host == LEADER else "Reachable") if is_manager else "",
                engine_version=ENGINE,
                role="manager" if is_manager else "worker",
                address=addresses[host],
                labels={} if is_manager else labels(int(host.rsplit("-", 1)[1])),
            )
        )
    return sorted(rows, key=lambda r: (r["role"] != "manager", r["hostname"]))


def member_probe(host, addr, fabric_addr, managers, addresses, rows):
    """swarm_info (nodes=true, host_facts=true, fail_on_unavailable=false) on an active member of the swarm."""
    is_manager = rows is not None
    probe = dict(
        changed=False,
        failed=False,
        docker_available=True,
        engine_version=ENGINE,
        hostname=host,
        swarm_state="active",
        in_swarm=True,
        is_manager=is_manager,
        node_id=node_id(host),
        node_addr=addr,
        cluster_id=CLUSTER_ID if is_manager else "",
        remote_managers=[dict(node_id=node_id(m), addr=addresses[m] + ":2377") for m in managers],
        host=host_facts(addr, fabric_addr),
    )
    if is_manager:
        # Each manager's probe is its own copy, as the JSON of each host's result is.
        probe.update(autolock=False, leader=LEADER, nodes=[dict(r, labels=dict(r["labels"])) for r in rows])
    return probe


def build(size, down_share=0.0):
    """dict(groups, hostvars, managers, workers, hosts, probed, nodes, node_ids, victim, down) for a formed swarm."""
    manager_count, worker_count = layout(size)
    managers = ["manager-%d" % i for i in range(1, manager_count + 1)]
    workers = ["worker-%d" % i for i in range(1, worker_count + 1)]
    balancers = sorted(VIPS)
    hosts = managers + workers
    down = set(workers[:: round(1 / down_share)]) if down_share else set()
    addresses = {h: address(i) for i, h in enumerate(hosts + balancers)}
    fabric = {h: "10.200.%d.%d" % (i // 250, i % 250 + 1) for i, h in enumerate(hosts + balancers)}
    rows = node_rows(managers, workers, addresses, down)
    common = dict(ansible_user="admin", ansible_become=True, fabric_subnet=FABRIC_SUBNET)
    hostvars = {}
    for host in hosts:
        if host in down:
            probe = dict(
                unreachable=True,
                changed=False,
                msg="Task failed: Failed to connect to the host via ssh: ssh: connect to host %s port 22: No route "
                "to host" % addresses[host],
            )
        else:
            probe = member_probe(
                host, addresses[host], fabric[host], managers, addresses, rows if host in managers else None
            )
        host_vars = dict(
            common,
            inventory_hostname=host,
            ansible_host=addresses[host],
            group_names=["managers" if host in managers else "workers", "swarm"],
            swarm_probe=probe,
            swarm_node_id=node_id(host),
            docker_engine_restart_pending=True,
        )
        if host in workers:
            host_vars["swarm_node_labels"] = labels(int(host.rsplit("-", 1)[1]))
        hostvars[host] = host_vars
    for lb in balancers:
        probe = dict(
            unavailable_result("no engine listens on unix:///var/run/docker.sock"),
            host=host_facts(addresses[lb], fabric[lb]),
        )
        hostvars[lb] = dict(
            common,
            inventory_hostname=lb,
            ansible_host=addresses[lb],
            group_names=["loadbalancers"],
            swarm_probe=probe,
            edge_lb_vip=VIPS[lb],
        )
    groups = dict(
        all=hosts + balancers,
        ungrouped=[],
        swarm=list(hosts),
        managers=managers,
        workers=workers,
        loadbalancers=balancers,
    )
    return dict(
        groups=groups,
        hostvars=hostvars,
        managers=managers,
        workers=workers,
        hosts=hosts,
        probed=hosts + balancers,  # ansible_play_hosts_all of preflight (swarm:loadbalancers)
        nodes=hostvars[LEADER]["swarm_probe"]["nodes"],
        node_ids={h: node_id(h) for h in hosts},
        addresses=addresses,
        victim=workers[len(workers) // 2],
        down=sorted(down),
    )


# ---------------------------------------------------------------- the filters, as the plays call them


class Case:
    """One filter call: name, where the plays call it, how often per run, the call and the check of its result."""

    def __init__(self, name, where, call, check, per_host=0, inventory="formed", reference=False):
        self.name, self.where, self.call, self.check = name, where, call, check
        self.reference = reference  # not a filter: the machine's own growth for linear work
        self.per_host = per_host  # calls per host per run (0: once per run)
        self.inventory = inventory


def expect(condition, what):
    return None if condition else what


def restart_order_ok(result, inv):
    return expect(
        len(result) == len(inv["hosts"]) and result[0] in inv["workers"] and result[-1] == LEADER,
        "all hosts, workers first, the leader last",
    )


def fabric_ok(result, inv):
    members = result["members"]
    sample = members.get(inv["victim"]) or {}
    return expect(
        not result["errors"]
        and not result["warnings"]
        and len(members) == len(inv["probed"])
        and len(sample.get("peers") or []) == len(inv["probed"]) - 1
        and sample.get("address", "").startswith("10.200."),
        "no errors, every host a member with its fabric0 address and every other host a peer",
    )


def edge_ok(result, inv):
    balancers = result["balancers"]
    return expect(
        not result["errors"]
        and sorted(balancers) == sorted(VIPS)
        and all(len(b["services"]) == 3 for b in balancers.values())
        and all(len(s["real_servers"]) == len(inv["hosts"]) for b in balancers.values() for s in b["services"]),
        "no errors, 2 balancers with 3 virtual services of N real servers each",
    )


def removal_ok(result, inv):
    steps = result["steps"]
    return expect(
        not result["errors"]
        and result["manager"] == LEADER
        and len(steps) == 1
        and steps[0]["host"] == inv["victim"]
        and steps[0]["node"] == node_id(inv["victim"])
        and not steps[0]["demote"]
        and steps[0]["leave"],
        "no errors, driven from the leader, one step: the named worker leaves, no demotion",
    )


def reset_ok(result, inv):
    return expect(
        result["last"] == LEADER
        and result["workers"] == inv["workers"]
        and result["managers"] == inv["managers"][1:]
        and not result["unreachable"],
        "every worker, then the managers, the leader last",
    )


def cases():
    tcp_ports = sum(1 for p in services.swarm_ingress_ports(SERVICES) if p[1] == "tcp")
    return [
        Case(
            REFERENCE,
            "(not a filter)",
            lambda i: sum(1 for h in i["hosts"] if i["hostvars"][h]["swarm_probe"].get("in_swarm")),
            lambda r, i: expect(r == len(i["hosts"]), "every host read"),
            reference=True,
        ),
        Case(
            "swarm_inventory_errors",
            "preflight.yml",
            lambda i: swarm.swarm_inventory_errors(i["groups"]),
            lambda r, i: expect(r == [], "no errors"),
        ),
        Case(
            "swarm_live_managers",
            "preflight.yml",
            lambda i: swarm.swarm_live_managers(i["managers"], i["hostvars"], i["probed"]),
            lambda r, i: expect(r == i["managers"], "every manager live"),
        ),
        Case(
            "swarm_preflight",
            "preflight.yml",
            lambda i: swarm.swarm_preflight(i["groups"], i["hostvars"], i["probed"], []),
            lambda r, i: expect(r == dict(errors=[], warnings=[]), "no errors, no warnings"),
        ),
        Case(
            "dataplane_errors",
            "preflight.yml",
            lambda i: dataplane.dataplane_errors(i["groups"], i["hostvars"], SERVICES),
            lambda r, i: expect(r == dict(errors=[], warnings=[]), "no errors, no warnings"),
        ),
        Case(
            "swarm_unreachable_hosts",
            "strict.yml",
            lambda i: lifecycle.swarm_unreachable_hosts(
                i["groups"]["swarm"] + i["groups"]["loadbalancers"], i["hostvars"]
            ),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "fabric_plan",
            "fabric role",
            lambda i: dataplane.fabric_plan(i["groups"], i["hostvars"]),
            fabric_ok,
        ),
        Case(
            "edge_lb_plan",
            "edge_lb role",
            lambda i: dataplane.edge_lb_plan(i["groups"], i["hostvars"], SERVICES),
            edge_ok,
        ),
        Case(
            "swarm_restart_order",
            "docker_engine role",
            lambda i: swarm.swarm_restart_order(i["hosts"], i["hostvars"], "docker_engine_restart_pending"),
            restart_order_ok,
        ),
        Case(
            "swarm_restart_errors",
            "docker_engine role",
            lambda i: swarm.swarm_restart_errors(i["hosts"], i["hostvars"], False),
            lambda r, i: expect(r == [], "none (managers reachable, no autolock)"),
        ),
        Case(
            "swarm_restart_warnings",
            "docker_engine role",
            lambda i: swarm.swarm_restart_warnings(i["hosts"], i["hostvars"]),
            lambda r, i: expect(r == [], "none (odd managers)"),
        ),
        Case(
            "swarm_member_addresses",
            "docker_engine plan (firewall opt-in), once per run",
            lambda i: swarm.swarm_member_addresses(i["groups"], i["hostvars"]),
            lambda r, i: expect(r == [i["addresses"][h] for h in i["hosts"]], "every host's address, in order"),
        ),
        Case(
            "swarm_unresolved_members",
            "docker_engine plan (firewall opt-in), once per run",
            lambda i: swarm.swarm_unresolved_members(i["groups"], i["hostvars"]),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "swarm_bootstrap_host",
            "swarm role",
            lambda i: swarm.swarm_bootstrap_host(i["managers"], i["hostvars"], i["hosts"]),
            lambda r, i: expect(r == LEADER, "the leader"),
        ),
        Case(
            "swarm_hosts_to_join",
            "swarm role",
            lambda i: swarm.swarm_hosts_to_join(i["hosts"], i["hostvars"]),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "swarm_reconcile_plan",
            "swarm role",
            lambda i: swarm.swarm_reconcile_plan(i["nodes"], i["hosts"], i["hostvars"], i["managers"], i["node_ids"]),
            lambda r, i: expect(r == [], "empty (roles and labels as declared)"),
        ),
        Case(
            "swarm_stale_nodes",
            "swarm role",
            lambda i: swarm.swarm_stale_nodes(i["nodes"], i["hosts"], i["node_ids"]),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "swarm_node_table",
            "swarm role",
            lambda i: swarm.swarm_node_table(i["nodes"]),
            lambda r, i: expect(r.count("\n") == len(i["hosts"]) and ENGINE in r, "a header and N rows"),
        ),
        Case(
            "swarm_hosts_without_ipvs",
            "services.yml",
            lambda i: services.swarm_hosts_without_ipvs(i["hosts"], i["hostvars"]),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "swarm_hosts_without_esp",
            "services.yml",
            lambda i: services.swarm_hosts_without_esp(i["hosts"], i["hostvars"]),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "swarm_scale_report",
            "scale.yml",
            lambda i: lifecycle.swarm_scale_report(i["hosts"], i["hostvars"], []),
            lambda r, i: expect(len(r) == len(i["hosts"]) and "already a node" in r[-1], "one line per host"),
        ),
        Case(
            "verify_targets",
            "verify.yml",
            lambda i: dataplane.verify_targets(i["groups"], i["hostvars"], SERVICES),
            lambda r, i: expect(
                len(r) == tcp_ports * (len(i["hosts"]) + len(VIPS)), "every TCP port via every node and VIP"
            ),
        ),
        Case(
            "swarm_removal_name_errors",
            "remove-node.yml",
            lambda i: lifecycle.swarm_removal_name_errors([i["victim"]], i["groups"]),
            lambda r, i: expect(r == [], "none"),
        ),
        Case(
            "swarm_removal_plan",
            "remove-node.yml",
            lambda i: lifecycle.swarm_removal_plan(
                [i["victim"]], i["groups"], i["hostvars"], i["managers"] + [i["victim"]], False
            ),
            removal_ok,
        ),
        Case(
            "swarm_reset_plan",
            "reset.yml",
            lambda i: lifecycle.swarm_reset_plan(i["hosts"], i["hostvars"], i["managers"]),
            reset_ok,
        ),
        Case(
            "swarm_preflight",
            "preflight.yml",
            lambda i: swarm.swarm_preflight(i["groups"], i["hostvars"], i["probed"], []),
            lambda r, i: expect(
                not r["errors"] and len(r["warnings"]) == len(i["down"]), "no errors, one warning per host down"
            ),
            inventory="down",
        ),
        Case(
            "swarm_member_addresses",
            "docker_engine plan (firewall opt-in), once per run",
            lambda i: swarm.swarm_member_addresses(i["groups"], i["hostvars"]),
            lambda r, i: expect(
                r == [i["addresses"][h] for h in i["hosts"]], "every host's address, the down ones from the node rows"
            ),
            inventory="down",
        ),
        Case(
            "swarm_unresolved_members",
            "docker_engine plan (firewall opt-in), once per run",
            lambda i: swarm.swarm_unresolved_members(i["groups"], i["hostvars"]),
            lambda r, i: expect(r == [], "none (the down hosts found in the node rows)"),
            inventory="down",
        ),
    ]


# ---------------------------------------------------------------- timing


def one_sample(call, loops):
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            result = call()
        return (time.perf_counter() - start) / loops, result
    finally:
        gc.enable()


def measure(sizes, repeat, all_cases):
    """{size: {label: dict(seconds, samples)}}: each filter's result checked at its first call, then `repeat` rounds
    over every size and filter, one sample each, so that a burst of other work on the machine spoils one sample of
    many filters rather than every sample of one."""
    inventories = {}
    for size in sizes:
        print(
            "building %d hosts (%d managers + %d workers), and the same with 1%% of workers down"
            % (size, *layout(size))
        )
        inventories[size] = {"formed": build(size), "down": build(size, down_share=0.01)}
    state = {}
    for size in sizes:
        for case in all_cases:
            inv = inventories[size][case.inventory]
            first, result = one_sample(lambda c=case, i=inv: c.call(i), 1)
            problem = case.check(result, inv)
            del result
            if problem:
                raise BenchError(
                    "%s at %d hosts: the result is not what a formed swarm gives (%s)" % (label(case), size, problem)
                )
            loops = 1 if first >= MIN_SAMPLE else math.ceil(MIN_SAMPLE / max(first, 1e-7))
            state[size, label(case)] = dict(call=lambda c=case, i=inv: c.call(i), loops=loops, spent=first, samples=[])
    for round_ in range(1, repeat + 1):
        for size in sizes:
            for case in all_cases:
                entry = state[size, label(case)]
                if entry["samples"] and entry["spent"] >= BUDGET:
                    continue
                seconds, _result = one_sample(entry["call"], entry["loops"])
                entry["samples"].append(seconds)
                entry["spent"] += seconds * entry["loops"]
        print("round %d of %d done" % (round_, repeat), flush=True)
    return {
        size: {
            label(c): dict(seconds=min(state[size, label(c)]["samples"]), samples=len(state[size, label(c)]["samples"]))
            for c in all_cases
        }
        for size in sizes
    }


def label(case):
    return case.name if case.inventory == "formed" else "%s (1%% of workers down)" % case.name


# ---------------------------------------------------------------- output


def growth(case, results, sizes):
    """(time ratio, host ratio, exponent, verdict) between the base size and the largest."""
    base, top = sizes[1] if len(sizes) > 2 else sizes[0], sizes[-1]
    t_base, t_top = results[base][label(case)]["seconds"], results[top][label(case)]["seconds"]
    ratio, hosts = t_top / t_base, top / base
    exponent = math.log(ratio) / math.log(hosts) if ratio > 0 and hosts > 1 else float("nan")
    return ratio, hosts, exponent, "linear" if ratio <= LINEAR_SLACK * hosts else "SUPER-LINEAR"


def per_run(case, seconds, size):
    """Seconds one run spends in this filter: once, or per_host times on every host."""
    return seconds * (case.per_host * size if case.per_host else 1)


def ms(seconds):
    """Milliseconds with three significant digits or more: 0.00412, 0.412, 41.2, 4120."""
    value = seconds * 1000
    return "%.0f" % value if value >= 100 else "%.3g" % value


def rows(all_cases, results, sizes):
    reference = next(c for c in all_cases if c.reference)
    ref_ratio = growth(reference, results, sizes)[0]
    out = []
    for case in all_cases:
        ratio, hosts, exponent, verdict = growth(case, results, sizes)
        top = results[sizes[-1]][label(case)]["seconds"]
        out.append(
            dict(
                name=label(case),
                where=case.where + ("" if not case.per_host else ", >=%dx per host" % case.per_host),
                times=[ms(results[s][label(case)]["seconds"]) for s in sizes],
                ratio="x%.1f (hosts x%.1f)" % (ratio, hosts),
                exponent="%.2f" % exponent,
                verdict=verdict,
                run="%.3g" % per_run(case, top, sizes[-1]),
                run_value=per_run(case, top, sizes[-1]),
                formed=case.inventory == "formed",
                super=verdict != "linear" and not case.reference,
                beyond_reference=ratio > LINEAR_SLACK * max(hosts, ref_ratio) and not case.reference,
                vs_reference="%.1f" % (ratio / ref_ratio),
                reference=case.reference,
                ratio_value=ratio,
            )
        )
    return out


def print_table(table, sizes):
    fmt = "%-45s %-50s" + " %10s" * len(sizes) + " %22s %6s %6s %13s %12s"
    print()
    heads = ("filter", "called from", *("%d ms" % s for s in sizes), "growth", "exp", "/ref", "verdict")
    print(fmt % (*heads, "run s @%d" % sizes[-1]))
    for r in table:
        verdict = "-" if r["reference"] else r["verdict"]
        print(
            fmt % (r["name"], r["where"], *r["times"], r["ratio"], r["exponent"], r["vs_reference"], verdict, r["run"])
        )


def meaning(all_cases, table, results, sizes):
    base, top = sizes[1] if len(sizes) > 2 else sizes[0], sizes[-1]
    superlinear = [r for r in table if r["super"]]
    linear = [r for r in table if not r["super"] and not r["reference"]]
    beyond = [r for r in superlinear if r["beyond_reference"]]
    near = [r for r in superlinear if not r["beyond_reference"]]
    reference = next(r for r in table if r["reference"])
    total = {
        s: sum(
            per_run(c, results[s][label(c)]["seconds"], s)
            for c in all_cases
            if c.inventory == "formed" and not c.reference
        )
        for s in sizes
    }

    def named(found):
        return ", ".join(
            "%s x%.1f" % (r["name"], r["ratio_value"]) for r in sorted(found, key=lambda r: -r["ratio_value"])
        )

    lines = [
        "- **Growth from %d to %d hosts (x%.1f):** %d of %d filter calls grew linearly (within x%.1f of the host "
        "ratio)%s."
        % (
            base,
            top,
            top / base,
            len(linear),
            len(table) - 1,
            LINEAR_SLACK,
            "; super-linear: " + named(superlinear) if superlinear else "; none grew super-linearly",
        ),
        "- **Against the reference** (%s, linear work that grew %s on this machine: memory and cache, not the "
        "code): %s."
        % (
            reference["name"].split(": ", 1)[1],
            reference["ratio"],
            (
                "beyond x%.1f of it, so the code itself does more than linear work: %s" % (LINEAR_SLACK, named(beyond))
                if beyond
                else "no filter grew beyond x%.1f of it" % LINEAR_SLACK
            )
            + ("; within it (the super-linear figure is the machine's): %s" % named(near) if near else ""),
        ),
        "- **One run's filter time on the formed swarm** (each filter once, the firewall's per host as often as the "
        "column says): %s s at %d hosts, %s s at %d (x%.1f for x%.1f hosts); the largest at %d: %s."
        % (
            secs(total[base]),
            base,
            secs(total[top]),
            top,
            total[top] / total[base],
            top / base,
            top,
            ", ".join(
                "%s %s s" % (r["name"], r["run"])
                for r in sorted(
                    (r for r in table if r["formed"] and not r["reference"]), key=lambda r: -r["run_value"]
                )[:3]
            ),
        ),
    ]
    return lines


def section(table, lines, results, sizes, info, argv):
    layouts = ", ".join("%d = %d + %d" % (s, *layout(s)) for s in sizes)
    out = [
        START,
        "## Filter plugins: time against the number of hosts",
        "",
        "`%s` (%s). Controller only, no lab: the hostvars and groups of a formed swarm built in memory (hosts = "
        "managers + workers: %s; two load balancers besides; each probe as swarm_info returns it, the managers' "
        "with all N node rows), each filter called as the plays call it and its result checked. Milliseconds per "
        "call, best of %s samples (a fast call looped to 50 ms per sample; fewer samples once one filter at one size "
        "took %d s), the garbage collector off during the call. Growth: time at %d / time at %d hosts, linear "
        "within x%.1f of the host ratio; exp: the exponent k of time ~ N^k between those sizes; / ref: the growth over "
        "that of the reference row, a pass that reads each host's probe once (linear work, whose growth is the machine's). "
        "`run s`: seconds "
        "one run spends in the filter at %d hosts (the firewall's filters are evaluated per host). Plain dicts "
        "stand in for Ansible's hostvars (which template on every lookup), so the seconds are a floor, and the "
        "machine was shared with other work, so read the ratios more than the seconds."
        % (
            " ".join(["python3", "bench/filters_bench.py", *argv]),
            info["date"],
            layouts,
            info["repeat"],
            BUDGET,
            sizes[-1],
            sizes[1] if len(sizes) > 2 else sizes[0],
            LINEAR_SLACK,
            sizes[-1],
        ),
        "",
        "| Filter | Called from | %s | Growth | exp | / ref | Verdict | run s @%d |"
        % (" | ".join("%d ms" % s for s in sizes), sizes[-1]),
        "|---|---|" + "---:|" * len(sizes) + "---:|---:|---:|---|---:|",
    ]
    for r in table:
        verdict = "-" if r["reference"] else r["verdict"].lower()
        out.append(
            "| %s | %s | %s | %s | %s | %s | %s | %s |"
            % (
                r["name"],
                r["where"],
                " | ".join(r["times"]),
                r["ratio"],
                r["exponent"],
                r["vs_reference"],
                verdict,
                r["run"],
            )
        )
    out += ["", "Machine: " + "; ".join("%s %s" % kv for kv in info["machine"].items()) + ".", ""]
    out += lines
    return "\n".join(out + [END])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,1000,2500,5000", help="comma-separated host counts (swarm hosts)")
    parser.add_argument("--repeat", type=int, default=3, help="samples per filter and size; the best is kept")
    return parser.parse_args()


def main():
    args = parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if len(sizes) < 2 or sizes[0] < 10 or args.repeat < 1:
        print("give at least two sizes of 10 hosts or more, and --repeat 1 or more", file=sys.stderr)
        return 2
    info = dict(
        machine=machine("none"), date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), repeat=args.repeat
    )

    def work():
        all_cases = cases()
        results = measure(sizes, args.repeat, all_cases)
        table = rows(all_cases, results, sizes)
        print_table(table, sizes)
        lines = meaning(all_cases, table, results, sizes)
        print("\n" + "\n".join(lines))
        write_section(START, END, section(table, lines, results, sizes, info, sys.argv[1:]))
        return results

    _, code = guarded(work, lambda: None)
    return code


if __name__ == "__main__":
    sys.exit(main())
