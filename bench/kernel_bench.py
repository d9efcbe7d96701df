#!/usr/bin/env python3
"""The kernel data plane on the VM tier: how long the real-kernel lab takes, and how the ipvs module compares with
programming IPVS one ipvsadm process per rule.

    python3 bench/kernel_bench.py                      # 1,000 virtual services x 10 real servers
    python3 bench/kernel_bench.py --services 200 --real-servers 5

Boots the VM lab `kbench` (lab/vm.py: a manager, a worker and a load balancer, on Debian's kernel under software
emulation) and times, in this order:

    boot      lab/vm.py up, until every VM answers SSH and the swarm VMs' engines answer
    cluster   cluster.yml with the kernel scenario's declaration (molecule/kernel/molecule.yml: a fabric, an edge
              load balancer, a service published through the routing mesh, an encrypted overlay)
    no-op     cluster.yml again (the bench fails if anything changes)
    verify    verify.yml

then, on the load balancer VM, in a network namespace of its own (so the edge's table is not touched), IPVS with
N virtual services x M real servers:

    naive     one `ipvsadm` process per rule (N x (M + 1) processes), timed inside the VM
    restore   the same rules through one `ipvsadm -R` (one process, for reference), timed inside the VM
    module    the ipvs module from an empty table, through Ansible (what an operator runs)
    no-op     the module again with the same declaration (must report no change)
    1% change the module with 1% of the services changed (their real servers' weights): must change only those
    floor     the module with nothing declared, on an empty table: Ansible's and the module's own start-up

Processes are counted inside the VM from the kernel's last PID (/proc/sys/kernel/ns_last_pid) before and after each
step, minus what reading it costs. The figures are printed and written to the "Kernel data plane" section of
docs/benchmarks.md (between its markers). The lab is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml
from benchlib import (
    REPO,
    BenchError,
    ansible_env,
    changed_tasks,
    command_output,
    guarded,
    run,
    tail,
    tool,
    write_section,
)

LAB = "kbench"
SUBNET = "192.168.233.0/24"
VM_PY = REPO / "lab" / "vm.py"
SCENARIO = REPO / "molecule" / "kernel" / "molecule.yml"
NETNS = "ipvsbench"
START, END = "<!-- kernel-bench:start -->", "<!-- kernel-bench:end -->"


# ---------------------------------------------------------------- the VM lab


def vm(*args, timeout=1800):
    rc, seconds, output = run([sys.executable, str(VM_PY), *args], timeout=timeout)
    if rc != 0:
        raise BenchError("lab/vm.py %s failed:\n%s" % (args[0], tail(output)))
    return seconds, output


def write_inventory(workdir, hosts_file):
    """The VM lab's hosts plus the kernel scenario's variables, as an inventory directory."""
    provisioner = yaml.safe_load(SCENARIO.read_text())["provisioner"]["inventory"]
    inventory = workdir / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "hosts.yml").write_text(hosts_file.read_text())
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(provisioner["group_vars"]["all"]))
    for host, values in provisioner["host_vars"].items():
        lb_vip = dict(values, edge_lb_vip=values["edge_lb_vip"].replace("192.168.232.", "192.168.233."))
        (inventory / "host_vars" / ("%s.yml" % host)).write_text(yaml.safe_dump(lb_vip))
    return inventory


def playbook(inventory, control_dir, *args):
    cmd = [tool("ansible-playbook"), "-i", str(inventory), *args]
    rc, seconds, output = run(cmd, env=ansible_env(control_dir), timeout=3600)
    if rc != 0:
        raise BenchError("ansible-playbook %s failed:\n%s" % (" ".join(args), tail(output)))
    return seconds, output


class Guest:
    """SSH to one VM of the lab (the lab key, a ControlMaster of its own)."""

    def __init__(self, inventory, host, control_dir):
        hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
        self.key = hosts["all"]["vars"]["ansible_ssh_private_key_file"]
        self.address = find_host(hosts, host)["ansible_host"]
        self.control = control_dir / ("guest-%s" % host)

    def sh(self, script, stdin=None, timeout=3600):
        argv = ["ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        argv += ["-o", "LogLevel=ERROR", "-o", "ControlMaster=auto", "-o", "ControlPath=%s" % self.control]
        argv += ["-o", "ControlPersist=600", "root@%s" % self.address, script]
        result = subprocess.run(argv, input=stdin, text=True, capture_output=True, timeout=timeout)
        if result.returncode != 0:
            raise BenchError("%s: %s failed: %s" % (self.address, script[:60], result.stderr.strip()))
        return result.stdout

    def last_pid(self):
        return int(self.sh("cat /proc/sys/kernel/ns_last_pid"))

    def timed(self, script):
        """(seconds inside the VM, processes spawned) of a shell script run on the VM."""
        out = self.sh(
            "a=$(cat /proc/sys/kernel/ns_last_pid); s=$(date +%%s.%%N); %s >/dev/null; e=$(date +%%s.%%N); "
            "b=$(cat /proc/sys/kernel/ns_last_pid); echo $s $e $a $b" % script
        )
        start, end, before, after = out.split()
        # The wrapper itself spawns date, cat and date between the two PID readings.
        return float(end) - float(start), int(after) - int(before) - 3


def find_host(inventory, name):
    for group in inventory["all"]["children"].values():
        for child in (group.get("children") or {}).values():
            if name in (child.get("hosts") or {}):
                return child["hosts"][name]
        if name in (group.get("hosts") or {}):
            return group["hosts"][name]
    raise BenchError("host %s is not in the lab inventory" % name)


# ---------------------------------------------------------------- IPVS


def declaration(services, real_servers, changed=0):
    """N virtual services on 10.200.x.y:80, M real servers each; the first `changed` get weight 2."""
    declared = []
    for i in range(services):
        declared.append(
            dict(
                address="10.200.%d.%d" % (i // 250, i % 250 + 1),
                port=80,
                scheduler="rr",
                real_servers=[
                    dict(address="10.201.%d.%d" % (j, i % 250 + 1), port=8080, weight=2 if i < changed else 1)
                    for j in range(real_servers)
                ],
            )
        )
    return declared


def ipvsadm_rules(services):
    lines = []
    for s in services:
        vs = "-t %s:%d" % (s["address"], s["port"])
        lines.append("-A %s -s %s" % (vs, s["scheduler"]))
        lines += ["-a %s -r %s:%d -m -w %d" % (vs, r["address"], r["port"], r["weight"]) for r in s["real_servers"]]
    return lines


def module_step(inventory, control_dir, guest, workdir, name, services):
    """Run the ipvs module on lb-1 in the bench namespace: (seconds, processes, result)."""
    play = workdir / ("%s.yml" % name)
    data = workdir / ("%s-vars.json" % name)
    result = workdir / ("%s-result.json" % name)
    data.write_text(json.dumps(dict(bench_services=services)))
    play.write_text(
        yaml.safe_dump(
            [
                dict(
                    name="IPVS bench: %s" % name,
                    hosts="lb-1",
                    gather_facts=False,
                    tasks=[
                        dict(
                            name="Reconcile the table",
                            register="bench",
                            **{
                                "swarmplane.cluster.ipvs": dict(
                                    netns=NETNS, services="{{ bench_services }}", drain_timeout=0
                                )
                            },
                        ),
                        dict(
                            name="Keep the result",
                            delegate_to="localhost",
                            **{
                                "ansible.builtin.copy": dict(
                                    content="{{ bench | to_json }}", dest=str(result), mode="0644"
                                )
                            },
                        ),
                    ],
                )
            ]
        )
    )
    before = guest.last_pid()
    seconds, output = playbook(inventory, control_dir, str(play), "-e", "@%s" % data)
    after = guest.last_pid()
    outcome = json.loads(result.read_text())
    return seconds, after - before, outcome["summary"], outcome["changes"] if outcome["changed"] else []


def check_table(guest, wanted, by):
    """Fail unless the bench namespace holds (services, real servers) = wanted."""
    out = guest.sh("ip netns exec %s ipvsadm -Ln" % NETNS)
    found = (
        sum(1 for line in out.splitlines() if line.startswith("TCP")),
        sum(1 for line in out.splitlines() if line.strip().startswith("-> ") and line.split()[1][0].isdigit()),
    )
    if found != wanted:
        raise BenchError("%s left %d services and %d real servers, not %d and %d" % ((by,) + found + wanted))


def ipvs_bench(inventory, control_dir, workdir, services, real_servers):
    guest = Guest(inventory, "lb-1", control_dir)
    # Real servers must be unicast addresses for the kernel: the namespace gets a route to them.
    guest.sh(
        f"modprobe ip_vs; modprobe ip_vs_rr; ip netns del {NETNS} 2>/dev/null; ip netns add {NETNS}; "
        f"ip -n {NETNS} link set lo up; ip -n {NETNS} link add rs0 type dummy; ip -n {NETNS} link set rs0 up; "
        f"ip -n {NETNS} addr add 10.201.255.254/16 dev rs0"
    )
    full = declaration(services, real_servers)
    rules = ipvsadm_rules(full)
    guest.sh("cat > /tmp/bench-rules", stdin="\n".join(rules) + "\n")
    reading = guest.last_pid()
    pid_read_cost = guest.last_pid() - reading  # the processes one reading spawns (sshd session, shell, cat)
    results = dict(rules=len(rules), pid_read_cost=pid_read_cost)

    flush = "ip netns exec %s ipvsadm -C" % NETNS
    wanted = (services, services * real_servers)
    results["naive"] = guest.timed(
        "ip netns exec %s sh -c 'while read -r rule; do ipvsadm $rule; done < /tmp/bench-rules'" % NETNS
    )
    check_table(guest, wanted, "the naive loop")
    guest.sh(flush)
    results["restore"] = guest.timed("ip netns exec %s ipvsadm -R < /tmp/bench-rules" % NETNS)
    check_table(guest, wanted, "ipvsadm -R")
    guest.sh(flush)
    results["floor"] = module_step(inventory, control_dir, guest, workdir, "floor", [])
    results["module"] = module_step(inventory, control_dir, guest, workdir, "full", full)
    check_table(guest, wanted, "the ipvs module")
    results["noop"] = module_step(inventory, control_dir, guest, workdir, "noop", full)
    changed = max(1, services // 100)
    results["change"] = module_step(
        inventory, control_dir, guest, workdir, "change", declaration(services, real_servers, changed)
    )
    results["changed_services"] = changed
    guest.sh("ip netns exec %s ipvsadm -C; ip netns del %s" % (NETNS, NETNS))
    if results["noop"][3]:
        raise BenchError("the no-op ipvs run changed something: %s" % results["noop"][3][:5])
    return results


# ---------------------------------------------------------------- report


def section(figures, info, command, elapsed):
    ipvs = figures["ipvs"]
    n, m = figures["services"], figures["real_servers"]
    naive_s, naive_p = ipvs["naive"]
    restore_s, restore_p = ipvs["restore"]
    cost = ipvs["pid_read_cost"]

    def module_row(label, key):
        seconds, pids, summary, _changed = ipvs[key]
        touched = sum(v for k, v in (summary or {}).items() if k != "services_removed")
        return "| %s | %.1f | %d | %s |" % (label, seconds, max(0, pids - cost), touched)

    noop_ratio = naive_s / ipvs["noop"][0]
    change = ipvs["change"][2] or {}
    lines = [
        START,
        "## Kernel data plane (VM tier)",
        "",
        "Written by `bench/kernel_bench.py`, which replaces only this section (between its markers); do not edit by "
        "hand, re-run it.",
        "",
        "```sh",
        " ".join(command),
        "```",
        "",
        "The VM lab `kbench` (lab/vm.py): a manager, a worker and a load balancer, 1 vCPU and 1.5 GiB each, Debian's "
        "`linux-image-cloud-amd64` under qemu's software emulation on this machine's 2 cores. Measured %s; the whole "
        "bench took %.1f min." % (info["date"], elapsed / 60),
        "",
        "- Host kernel: %s; qemu: %s; ansible-core: %s" % (info["kernel"], info["qemu"], info["ansible"]),
        "- Load average at start (1/5/15 min): %s" % info["load"],
        "",
        "### The kernel scenario's steps",
        "",
        "| Step | seconds | changed tasks |",
        "|---|---:|---:|",
    ]
    for label, key in (("VM boot (3 VMs, to SSH and engines)", "boot"), ("cluster.yml, new cluster", "cluster")):
        lines.append("| %s | %.1f | %s |" % (label, figures[key][0], figures[key][1]))
    lines.append("| cluster.yml, no-op | %.1f | %s |" % figures["noop"])
    lines.append("| verify.yml | %.1f | - |" % figures["verify"][0])
    lines += [
        "",
        "### IPVS: %d virtual services x %d real servers (%d rules)" % (n, m, ipvs["rules"]),
        "",
        "Inside the load balancer VM, in a network namespace of its own. ipvsadm steps are timed inside the VM; the "
        "module steps are whole Ansible runs from this machine (SSH, module transfer, Python start-up under "
        "emulation included). Processes are counted inside the VM from the last PID, less the %d a reading costs; "
        "a module step's processes include Ansible's own (the SSH session and the module's Python)." % cost,
        "",
        "| Step | seconds | processes in the VM | entries changed |",
        "|---|---:|---:|---:|",
        "| naive: one `ipvsadm` per rule | %.1f | %d | %d |" % (naive_s, naive_p, ipvs["rules"]),
        "| `ipvsadm -R` (one process, for reference) | %.1f | %d | %d |" % (restore_s, restore_p, ipvs["rules"]),
        module_row("ipvs module, from empty", "module"),
        module_row("ipvs module, no-op", "noop"),
        module_row(
            "ipvs module, %d%% changed (%d services)" % (100 * ipvs["changed_services"] // n, ipvs["changed_services"]),
            "change",
        ),
        module_row("ipvs module, nothing declared (start-up floor)", "floor"),
        "",
        "| Target | Goal | Measured | |",
        "|---|---|---:|---|",
        "| no-op vs the naive full apply | at least 20x faster | %.1fx | %s |"
        % (noop_ratio, "PASS" if noop_ratio >= 20 else "MISS"),
        "| 1%% change touches only the changed entries | %d real servers updated, nothing else | %s | %s |"
        % (
            ipvs["changed_services"] * m,
            ", ".join("%s %d" % (k, v) for k, v in sorted(change.items()) if v) or "nothing",
            "PASS"
            if change.get("real_servers_updated") == ipvs["changed_services"] * m
            and sum(change.values()) == ipvs["changed_services"] * m
            else "MISS",
        ),
        "",
        "The module applied the whole table %.0fx faster than the naive loop. Its processes are Ansible's own (the SSH "
        "session, the shell, the module's Python); the module itself spawns none: it talks netlink."
        % (naive_s / ipvs["module"][0]),
        END,
    ]
    return "\n".join(lines)


def machine():
    return dict(
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        kernel=command_output(["uname", "-r"]),
        qemu=(command_output(["qemu-system-x86_64", "--version"]).splitlines() or ["?"])[0].split("version ")[-1],
        ansible=command_output([tool("ansible"), "--version"]).splitlines()[0].split("[core ")[-1].rstrip("]"),
        load=" / ".join(Path("/proc/loadavg").read_text().split()[:3]),
    )


def bench(args, workdir):
    control_dir = workdir / "cp"
    control_dir.mkdir()
    hosts = workdir / "hosts.yml"
    vm("down", "--name", LAB)
    boot, _ = vm(
        "up",
        "--name",
        LAB,
        "--subnet",
        SUBNET,
        "--managers",
        "1",
        "--workers",
        "1",
        "--loadbalancers",
        "1",
        "--inventory",
        str(hosts),
    )
    inventory = write_inventory(workdir, hosts)
    figures = dict(services=args.services, real_servers=args.real_servers, boot=(boot, "-"))
    seconds, output = playbook(inventory, control_dir, "cluster.yml")
    figures["cluster"] = (seconds, len(changed_tasks(output)))
    print("cluster.yml: %.1f s" % seconds, flush=True)
    seconds, output = playbook(inventory, control_dir, "cluster.yml")
    if changed_tasks(output):
        raise BenchError("the no-op cluster.yml changed: %s" % changed_tasks(output))
    figures["noop"] = (seconds, 0)
    print("cluster.yml no-op: %.1f s" % seconds, flush=True)
    figures["verify"] = playbook(inventory, control_dir, "verify.yml")
    print("verify.yml: %.1f s" % figures["verify"][0], flush=True)
    figures["ipvs"] = ipvs_bench(inventory, control_dir, workdir, args.services, args.real_servers)
    return figures


def remove_lab():
    print("removing the VM lab '%s'" % LAB, flush=True)
    vm("down", "--name", LAB)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--real-servers", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="swarmplane-kbench-") as tmp:
        figures, code = guarded(lambda: bench(args, Path(tmp)), remove_lab)
    if code:
        return code
    elapsed = time.monotonic() - started
    text = section(figures, info, ["python3", "bench/kernel_bench.py", *sys.argv[1:]], elapsed)
    print(text)
    write_section(START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
