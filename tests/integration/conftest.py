"""A lab of container hosts shared by the integration tests, removed at the end even when tests fail."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_NAME = "it"


def run_playbook(inventory, *args, playbook="cluster.yml", env=None):
    """ansible-playbook from the repo with the project's ansible.cfg; returns the CompletedProcess, with `stats`:
    the swarmplane.cluster.run_stats report (per host: tasks ran, changed, skipped, failed)."""
    with tempfile.TemporaryDirectory(prefix="swarmplane-run-") as tmp:
        report = Path(tmp) / "stats.json"
        environ = ansible_env(
            ANSIBLE_CALLBACKS_ENABLED="swarmplane.cluster.run_stats", SWARMPLANE_RUN_STATS=str(report)
        )
        environ.update(env or {})
        result = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), playbook, *args],
            cwd=REPO,
            env=environ,
            text=True,
            capture_output=True,
            timeout=600,
        )
        result.stats = json.loads(report.read_text()) if report.exists() else {"hosts": {}}
    return result


def ansible_env(**extra):
    """The environment of an ansible or ansible-playbook run from the repo: the project's ansible.cfg, no colour."""
    return dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **extra
    )


def run_adhoc(inventory, host, module, args, *options, env=None, timeout=600):
    """`ansible <host> -m <module> -a <args>` from the repo, as an operator types it; returns the CompletedProcess.
    args: the module's arguments as key=value text, or a dict (sent as JSON)."""
    if not isinstance(args, str):
        args = json.dumps(args)
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "-i", str(inventory), host, "-m", module, "-a", args, *options],
        cwd=REPO,
        env=ansible_env(**(env or {})),
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def run_services(inventory, tmp_path, declaration, *args):
    """services.yml with a declaration (swarm_services, swarm_networks, ...) as extra vars; the CompletedProcess of
    run_playbook, with `text`: its output on one line (whitespace collapsed) for matching messages."""
    extra = tmp_path / ("vars-%d.yml" % time.monotonic_ns())
    extra.write_text(yaml.safe_dump(declaration))
    result = run_playbook(inventory, "-e", "@%s" % extra, *args, playbook="services.yml")
    result.text = " ".join(result.stdout.split())
    return result


def changed(result):
    """{host: number of tasks that reported a change} of a run_playbook result."""
    return {host: counts["changed"] for host, counts in result.stats["hosts"].items()}


@contextlib.contextmanager
def registry_lab(name, directory, managers=1, workers=2):
    """A lab of its own with the lab registry, the swarm formed by cluster.yml; yields (inventory, {host:
    address}); the lab is removed at the end, even when the formation or a test fails."""
    inventory = directory / "hosts.yml"
    lab = [str(REPO / "lab" / "lab.py")]
    subprocess.run(
        lab
        + [
            "up",
            "--name",
            name,
            "--managers",
            str(managers),
            "--workers",
            str(workers),
            "--registry",
            "--inventory",
            str(inventory),
        ],
        check=True,
    )
    try:
        formed = run_playbook(inventory)
        assert formed.returncode == 0, formed.stdout[-3000:]
        hosts = yaml.safe_load(inventory.read_text())["all"]["children"]["swarm"]["children"]
        addresses = {
            host: hv["ansible_host"] for group in hosts.values() for host, hv in (group["hosts"] or {}).items()
        }
        yield inventory, addresses
    finally:
        subprocess.run(lab + ["down", "--name", name], check=False)


def write_inventory(path, managers, workers, lab, host_vars=None, loadbalancers=(), all_vars=None):
    """An inventory in the sample's shape for the given lab hosts; host_vars adds or overrides per host,
    loadbalancers (lab hosts) form the group of that name, all_vars are added to all.vars."""
    base = lab["all"]["vars"]
    addresses = {}
    for group in lab["all"]["children"]["swarm"]["children"].values():
        for name, hv in (group.get("hosts") or {}).items():
            addresses[name] = hv["ansible_host"]

    def hosts(names):
        return {n: dict({"ansible_host": addresses.get(n, "127.0.0.1")}, **(host_vars or {}).get(n, {})) for n in names}

    inventory = {
        "all": {
            "vars": dict(base, **(all_vars or {})),
            "children": {
                "swarm": {"children": {"managers": {"hosts": hosts(managers)}, "workers": {"hosts": hosts(workers)}}}
            },
        }
    }
    if loadbalancers:
        inventory["all"]["children"]["loadbalancers"] = {"hosts": hosts(loadbalancers)}
    path.write_text(yaml.safe_dump(inventory))
    return path


def lab_exec(host, command):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB_NAME, host), "sh", "-c", command], text=True, capture_output=True
    )


def node_list(manager="manager-1", settle=30):
    """`docker node ls` as sorted "hostname status" lines, once every node is Ready (or after `settle` s)."""
    deadline = time.monotonic() + settle
    while True:
        out = lab_exec(manager, "docker node ls --format '{{.Hostname}} {{.Status}}'").stdout
        nodes = sorted(line for line in out.splitlines() if line)
        if (nodes and all(n.endswith(" Ready") for n in nodes)) or time.monotonic() > deadline:
            return nodes
        time.sleep(1)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("lab") / "hosts.yml"
    subprocess.run(
        [
            str(REPO / "lab" / "lab.py"),
            "up",
            "--name",
            LAB_NAME,
            "--managers",
            "1",
            "--workers",
            "1",
            "--inventory",
            str(inventory),
        ],
        check=True,
    )
    try:
        yield yaml.safe_load(inventory.read_text())
    finally:
        subprocess.run([str(REPO / "lab" / "lab.py"), "down", "--name", LAB_NAME], check=False)
