"""Backup and restore of the raft state (issue 8), on a lab of its own: 3 managers, 1 worker, the lab registry.

A service (2 replicas of the registry's web image), a network, a secret and a config are declared through
services.yml; backup.yml archives a follower's raft state to the controller; every manager's swarm state is then
destroyed and restore.yml brings the swarm back from the archive onto one host and joins the others. Bad input
(no archive, a missing one, a corrupt one, a live swarm, a backup that would cost the quorum) is refused before any
host changes. The tests build on each other in file order.
"""

import hashlib
import re
import subprocess
import time

import pytest
import yaml
from conftest import changed, registry_lab, run_playbook, run_services

LAB = "bkup"
MANAGERS = ["manager-1", "manager-2", "manager-3"]
WORKERS = ["worker-1"]
DECLARATION = {
    "swarm_networks": [{"name": "backend"}],
    "swarm_secrets": [{"name": "db_password", "data": "bkup-secret-value"}],
    "swarm_configs": [{"name": "web_conf", "data": "greeting: hello\n"}],
    "swarm_services": [
        {
            "name": "web",
            "image": "lab-registry:5000/swarmplane/web:v1",
            "replicas": 2,
            "networks": ["backend"],
            "secrets": [{"source": "db_password"}],
            "configs": [{"source": "web_conf"}],
        }
    ],
}
ARCHIVE_NAME = re.compile(r"^swarm-([a-z0-9]{12})-(manager-\d)-(\d{8}T\d{6}Z)\.tar\.gz$")


def on(host, command):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command], text=True, capture_output=True
    )


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within %s s: %s" % (timeout, what)
        time.sleep(0.5)


def text(result):
    """The run's output with YAML's line folding undone, for matching whole sentences."""
    return " ".join(result.stdout.replace("''", "'").split())


def a_manager():
    """A manager that answers `docker node ls`."""
    for manager in MANAGERS:
        if on(manager, "docker node ls -q").returncode == 0:
            return manager
    raise AssertionError("no manager answers docker node ls")


def nodes():
    """Sorted (hostname, status, manager status) of every node, as a reachable manager lists them."""
    out = on(a_manager(), "docker node ls --format '{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}'").stdout
    return sorted(tuple(line.split("|")) for line in out.splitlines() if line)


def healthy():
    listed = nodes()
    ready = [(h, s) for h, s, _m in listed] == [(h, "Ready") for h in MANAGERS + WORKERS]
    return ready and sorted(m for _h, _s, m in listed if m) == ["Leader", "Reachable", "Reachable"]


def swarm_objects():
    """What must survive a restore: the IDs of the service, network, secret and config, and the service's spec."""
    manager = a_manager()
    listing = on(
        manager,
        "docker service ls --format 'service {{.Name}} {{.ID}}'; "
        "docker network ls --filter driver=overlay --format 'network {{.Name}} {{.ID}}'; "
        "docker secret ls --format 'secret {{.Name}} {{.ID}}'; docker config ls --format 'config {{.Name}} {{.ID}}'",
    ).stdout
    spec = on(manager, "docker service inspect web --format '{{json .Spec}}'").stdout.strip()
    return sorted(listing.splitlines()), spec


def dockerd_pids():
    return {h: on(h, "pidof dockerd").stdout.strip() for h in MANAGERS + WORKERS}


def set_aside_dirs():
    return {h: on(h, "ls -d /var/lib/docker/swarm.before-restore-* 2>/dev/null").stdout.split() for h in MANAGERS}


def stop_engine(host):
    assert on(host, "start-stop-daemon --stop --oknodo --retry 30 --exec /usr/sbin/dockerd").returncode == 0


def start_engine(host):
    started = on(
        host,
        "pgrep -x dockerd >/dev/null || rm -f /var/run/docker.pid; "
        "start-stop-daemon --start --background --oknodo --make-pidfile --pidfile /run/swarmplane-dockerd.pid "
        "--output /var/log/dockerd.log --exec /usr/sbin/dockerd",
    )
    assert started.returncode == 0, started.stderr
    wait_until(lambda: on(host, "docker info").returncode == 0, 60, "%s's engine answers" % host)


@pytest.fixture(scope="module")
def bkup(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bkup")
    with registry_lab(LAB, workdir, managers=3, workers=1) as (inventory, _addresses):
        declared = run_services(inventory, workdir, DECLARATION)
        assert declared.returncode == 0, declared.stdout[-3000:]
        yield dict(inventory=inventory, workdir=workdir, backups=workdir / "backups", state={})


class Untouched:
    """Asserts that a refused run changed nothing: the same engines (pids), swarm objects and nodes, no state set
    aside, no task reported a change."""

    def __enter__(self):
        wait_until(healthy, 60, "a healthy swarm before the run")
        self.pids, self.objects, self.aside = dockerd_pids(), swarm_objects(), set_aside_dirs()
        return self

    def check(self, result):
        assert result.returncode != 0
        assert set(changed(result).values()) <= {0}, changed(result)
        assert dockerd_pids() == self.pids
        assert swarm_objects() == self.objects
        assert set_aside_dirs() == self.aside
        assert healthy(), nodes()

    def __exit__(self, *exc):
        return False


def restore(bkup, *args):
    return run_playbook(bkup["inventory"], *args, playbook="restore.yml")


# --------------------------------------------------------------------------- bad input, live swarm


def test_restore_without_an_archive_is_refused_before_any_host_is_touched(bkup):
    with Untouched() as untouched:
        result = restore(bkup)
        untouched.check(result)
    said = text(result)
    assert "swarm_restore_archive is not set: restore.yml needs the archive to restore. Nothing was changed." in said
    assert "Fix: -e swarm_restore_archive=<path of a swarm-*.tar.gz that backup.yml fetched>" in said
    assert set(result.stats["hosts"]) <= {"localhost"}, "a host was contacted"


def test_restore_of_a_missing_archive_is_refused(bkup):
    missing = bkup["workdir"] / "nowhere" / "swarm-x.tar.gz"
    with Untouched() as untouched:
        result = restore(bkup, "-e", "swarm_restore_archive=%s" % missing)
        untouched.check(result)
    assert "swarm_restore_archive=%s: no such file" % missing in text(result)
    assert set(result.stats["hosts"]) <= {"localhost"}


def test_backup_that_would_cost_the_quorum_is_refused_with_the_arithmetic(bkup):
    pids = dockerd_pids()
    stop_engine("manager-3")
    try:
        wait_until(lambda: ("manager-3", "Unreachable") in [(h, m) for h, _s, m in nodes()], 60, "manager-3 out")
        result = run_playbook(bkup["inventory"], "-e", "swarm_backup_dir=%s" % bkup["backups"], playbook="backup.yml")
    finally:
        start_engine("manager-3")
    assert result.returncode != 0
    said = text(result)
    assert "the swarm has 3 managers, 2 reachable (unreachable: manager-3); stopping one leaves 1 reachable" in said
    assert "and 3 managers need 2 reachable (a majority). Nothing was changed. Fix: bring manager-3 back first" in said
    assert set(changed(result).values()) <= {0}
    assert not bkup["backups"].exists() or list(bkup["backups"].iterdir()) == []
    assert {h: p for h, p in dockerd_pids().items() if h != "manager-3"} == {
        h: p for h, p in pids.items() if h != "manager-3"
    }
    wait_until(healthy, 60, "manager-3 back")


def test_backup_archives_a_follower_to_the_controller_with_a_checksum(bkup):
    wait_until(healthy, 60, "a healthy swarm")
    leader = next(h for h, _s, m in nodes() if m == "Leader")
    cluster_id = on(leader, "docker info --format '{{.Swarm.Cluster.ID}}'").stdout.strip()
    before = swarm_objects()

    result = run_playbook(bkup["inventory"], "-e", "swarm_backup_dir=%s" % bkup["backups"], playbook="backup.yml")

    assert result.returncode == 0, result.stdout[-3000:]
    files = sorted(p.name for p in bkup["backups"].iterdir())
    assert len(files) == 2, files
    archive_name, checksum_name = files
    match = ARCHIVE_NAME.match(archive_name)
    assert match, archive_name
    assert match.group(1) == cluster_id[:12]
    assert match.group(2) != leader and match.group(2) in MANAGERS
    assert checksum_name == archive_name + ".sha256"
    archive = bkup["backups"] / archive_name
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (bkup["backups"] / checksum_name).read_text() == "%s  %s\n" % (digest, archive_name)
    assert subprocess.run(["sha256sum", "-c", checksum_name], cwd=bkup["backups"]).returncode == 0
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    members = subprocess.run(["tar", "-tzvf", str(archive)], text=True, capture_output=True, check=True).stdout
    assert " 0/0 " in members and "swarm/raft/" in members and "swarm/state.json" in members
    said = text(result)
    assert "the archive holds the keys that decrypt its raft, secrets included" in said
    assert "restore.yml -e swarm_restore_archive=%s" % archive in said
    assert on(match.group(2), "ls /var/tmp/swarmplane-backup-* 2>/dev/null").stdout == ""
    wait_until(healthy, 60, "the backed-up manager back in the raft")
    assert swarm_objects() == before
    bkup["state"].update(archive=archive, objects=before)


def test_restore_of_a_corrupt_archive_is_refused(bkup):
    archive = bkup["state"]["archive"]
    corrupt_dir = bkup["workdir"] / "corrupt"
    corrupt_dir.mkdir()
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (corrupt_dir / archive.name).write_bytes(bytes(data))
    (corrupt_dir / (archive.name + ".sha256")).write_text((archive.parent / (archive.name + ".sha256")).read_text())

    with Untouched() as untouched:
        result = restore(bkup, "-e", "swarm_restore_archive=%s" % (corrupt_dir / archive.name))
        untouched.check(result)
    said = text(result)
    assert "swarm_restore_archive=%s does not match its checksum" % (corrupt_dir / archive.name) in said
    assert "The archive is damaged or was changed since backup.yml wrote it. Nothing was changed." in said
    assert "Fix: restore an intact copy of it" in said
    assert set(result.stats["hosts"]) <= {"localhost"}


def test_restore_over_a_swarm_that_has_a_leader_is_refused(bkup):
    with Untouched() as untouched:
        result = restore(bkup, "-e", "swarm_restore_archive=%s" % bkup["state"]["archive"])
        untouched.check(result)
    said = text(result)
    assert "of a swarm that still has a leader" in said
    assert "set swarm_restore_replace_live=true" in said


# --------------------------------------------------------------------------- disaster and recovery


def test_swarm_lost_on_every_manager_comes_back_from_the_archive(bkup):
    archive = bkup["state"]["archive"]
    source = ARCHIVE_NAME.match(archive.name).group(2)
    for manager in MANAGERS:
        stop_engine(manager)
        assert on(manager, "rm -rf /var/lib/docker/swarm").returncode == 0
        start_engine(manager)
    assert on("manager-1", "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "inactive"

    result = restore(bkup, "-e", "swarm_restore_archive=%s" % archive)

    assert result.returncode == 0, result.stdout[-4000:]
    said = text(result)
    assert "restored from %s onto %s, a new cluster forced from it" % (archive, source) in said
    # Only live nodes: the 3 managers (one leader) and the worker, each once, Ready.
    assert nodes() == sorted(
        [(h, "Ready", "Leader" if h == source else "Reachable") for h in MANAGERS] + [("worker-1", "Ready", "")]
    )
    # Same objects, same IDs, same service spec.
    assert swarm_objects() == bkup["state"]["objects"]
    wait_until(
        lambda: on(source, "docker service ls --filter name=web --format '{{.Replicas}}'").stdout.strip() == "2/2",
        120,
        "web converged",
    )
    running = on(source, "docker service ps web --filter desired-state=running --format '{{.CurrentState}}'").stdout
    assert [line.split()[0] for line in running.splitlines()] == ["Running", "Running"]
    # The target's previous state was set aside, not deleted; no other manager's.
    aside = set_aside_dirs()
    assert len(aside[source]) == 1 and all(aside[h] == [] for h in MANAGERS if h != source)
    # The restored swarm is what the inventory declares: cluster.yml with the declaration changes nothing.
    declaration = bkup["workdir"] / "declaration.yml"
    declaration.write_text(yaml.safe_dump(DECLARATION))
    again = run_playbook(bkup["inventory"], "-e", "@%s" % declaration)
    assert again.returncode == 0, again.stdout[-3000:]
    assert set(changed(again).values()) == {0}, changed(again)


# --------------------------------------------------------------------------- autolock


def test_backup_with_autolock_needs_the_key_and_says_where_it_is_kept(bkup):
    password = bkup["workdir"] / "vault-pass"
    password.write_text("bkup-vault-password\n")
    password.chmod(0o600)
    vault_file, vault_id = bkup["workdir"] / "unlock.yml", "swarm@%s" % password
    keep_key = ["-e", "swarm_unlock_key_vault_file=%s" % vault_file, "-e", "swarm_unlock_key_vault_id=%s" % vault_id]
    locked = run_playbook(bkup["inventory"], "-e", "swarm_autolock=true", *keep_key)
    assert locked.returncode == 0, locked.stdout[-3000:]
    backups = bkup["workdir"] / "locked-backups"
    pids = dockerd_pids()

    refused = run_playbook(bkup["inventory"], "-e", "swarm_backup_dir=%s" % backups, playbook="backup.yml")

    assert refused.returncode != 0
    assert "the swarm has autolock on" in text(refused) and "swarm_unlock_key is not set" in text(refused)
    assert dockerd_pids() == pids and not backups.exists()

    result = run_playbook(
        bkup["inventory"],
        "-e",
        "swarm_backup_dir=%s" % backups,
        "-e",
        "@%s" % vault_file,
        "--vault-id",
        vault_id,
        *keep_key,
        playbook="backup.yml",
    )

    assert result.returncode == 0, result.stdout[-3000:]
    said = text(result)
    assert "The swarm has autolock on: the archive's raft keys are encrypted with its unlock key" in said
    assert "restoring it needs that key as swarm_unlock_key" in said
    assert "The current key is kept in %s (vault ID %s)" % (vault_file, vault_id) in said
    key = on(a_manager(), "docker swarm unlock-key -q").stdout.strip()
    assert key.startswith("SWMKEY-1-") and key.split("-")[-1] not in result.stdout + result.stderr
    archives = sorted(backups.glob("swarm-*.tar.gz"))
    assert len(archives) == 1
    wait_until(healthy, 60, "the backed-up manager unlocked and back in the raft")
    bkup["state"]["locked_archive"] = archives[0]


def test_restore_of_an_autolocked_archive_without_the_key_is_refused(bkup):
    archive = bkup["state"]["locked_archive"]
    with Untouched() as untouched:
        result = restore(bkup, "-e", "swarm_restore_archive=%s" % archive)
        untouched.check(result)
    said = text(result)
    assert "swarm_restore_archive=%s is of a swarm with autolock on" % archive in said
    assert "swarm_unlock_key is not set. Nothing was changed. Fix: give that key as swarm_unlock_key" in said
    assert set(result.stats["hosts"]) <= {"localhost"}


def test_restore_with_a_key_that_does_not_unlock_the_archive_puts_the_previous_state_back(bkup):
    # The key rotated since the backup: the archive needs the old one. Forced over the live swarm, the restore reaches
    # the unlock on the archive's manager, fails there, and puts that manager's state back (unlocked with the key).
    archive = bkup["state"]["locked_archive"]
    target = ARCHIVE_NAME.match(archive.name).group(2)
    new_key = on(a_manager(), "docker swarm unlock-key --rotate -q").stdout.strip()
    assert new_key.startswith("SWMKEY-1-")
    time.sleep(5)  # the managers re-encrypt their keys with the new one
    wait_until(healthy, 60, "a healthy swarm before the run")
    objects, aside = swarm_objects(), set_aside_dirs()

    result = restore(
        bkup,
        "-e",
        "swarm_restore_archive=%s" % archive,
        "-e",
        "swarm_restore_replace_live=true",
        "-e",
        "swarm_unlock_key=%s" % new_key,
    )

    assert result.returncode != 0
    said = text(result)
    assert "host %s: restoring %s failed at" % (target, archive) in said
    assert "swarm_unlock_key did not unlock it" in said
    assert "Its previous state was put back and its engine started on it, unlocked: nothing else was changed." in said
    assert new_key.split("-")[-1] not in result.stdout + result.stderr
    wait_until(healthy, 90, "%s back in the raft" % target)
    assert swarm_objects() == objects
    assert set_aside_dirs() == aside
