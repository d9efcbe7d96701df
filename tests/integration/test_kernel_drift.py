"""The preflight probe reads what of the kernel settings drifted: host_kernel runs only where something did (or on
every host with docker_engine_prepare_always), and a run with nothing to do skips the engine and swarm plays: the
probe is its only module run per host."""

from conftest import changed, lab_exec, run_playbook, write_inventory

KERNEL_TASK = "TASK [swarmplane.cluster.docker_engine : Load kernel modules and set sysctls for swarm networking]"
SYSCTL_FILE = "/etc/sysctl.d/90-swarmplane.conf"


def kernel_task(result):
    """{host: 'ok' | 'changed' | 'skipping'} of the kernel task in a run's output ({} when the task did not run)."""
    if KERNEL_TASK not in result.stdout:
        return {}
    section = result.stdout.split(KERNEL_TASK, 1)[1].split("TASK [", 1)[0]
    outcomes = {}
    for line in section.splitlines():
        word, _, rest = line.partition(": [")
        if rest:
            outcomes[rest.split("]", 1)[0]] = word.strip()
    return outcomes


def test_only_the_host_whose_kernel_settings_drifted_runs_host_kernel(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    first = run_playbook(inventory)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "net.ipv4.ip_forward = 1" in lab_exec("worker-1", "cat %s" % SYSCTL_FILE).stdout

    quiet = run_playbook(inventory)
    assert quiet.returncode == 0, quiet.stdout[-3000:]
    assert kernel_task(quiet) == {}
    assert set(changed(quiet).values()) == {0}
    # Nothing to do: the probe was the only module run, the engine and swarm plays were skipped, the table shown.
    assert "PLAY [Prepare the hosts | engine, kernel, firewall]" in quiet.stdout
    assert "TASK [swarmplane.cluster.docker_engine : Validating arguments" not in quiet.stdout
    assert "TASK [swarmplane.cluster.swarm : Pick the manager" not in quiet.stdout
    assert "manager-1" in quiet.stdout.split("TASK [Show the cluster (docker node ls)]", 1)[1]

    lab_exec("worker-1", "rm %s" % SYSCTL_FILE)
    repaired = run_playbook(inventory)
    assert repaired.returncode == 0, repaired.stdout[-3000:]
    assert kernel_task(repaired) == {"manager-1": "skipping", "worker-1": "changed"}
    assert changed(repaired) == {"manager-1": 0, "worker-1": 1}
    assert "worker-1: kernel settings differ: %s:" % SYSCTL_FILE in repaired.stdout  # why the plays ran
    assert "net.ipv4.ip_forward = 1" in lab_exec("worker-1", "cat %s" % SYSCTL_FILE).stdout

    forced = run_playbook(inventory, "-e", "docker_engine_prepare_always=true")
    assert forced.returncode == 0, forced.stdout[-3000:]
    assert kernel_task(forced) == {"manager-1": "ok", "worker-1": "ok"}
    assert set(changed(forced).values()) == {0}


def test_check_mode_reports_the_drift_without_repairing_it(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    assert run_playbook(inventory).returncode == 0
    lab_exec("worker-1", "rm %s" % SYSCTL_FILE)
    checked = run_playbook(inventory, "--check", "--diff")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert kernel_task(checked) == {"manager-1": "skipping", "worker-1": "changed"}
    assert "+net.ipv4.ip_forward = 1" in checked.stdout
    assert lab_exec("worker-1", "test -e %s" % SYSCTL_FILE).returncode == 1
    assert run_playbook(inventory).returncode == 0  # put right for the tests after this one
