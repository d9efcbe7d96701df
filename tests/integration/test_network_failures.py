"""swarm_network with recreate: true on real engines, each failure injected: a new subnet that overlaps another
network's or an MTU no interface can have (refused before any service is touched), a standalone container that
keeps the old network in use, a task that ignores SIGTERM and holds it beyond the module's timeout, and a create
that fails after the old network was removed (another network takes the subnet meanwhile). Each time what was
running runs again with the same spec (networks by name, aliases, secrets, configs) and the message says what
happened. Last, on the same lab, the secret naming key seen from a second manager after a join-token rotation.

Its own lab (`nfail`: a manager and a worker, the swarm formed by hand as in test_secret_config.py)."""

import functools
import threading
import time

import pytest
from test_secret_config import converged, hand_made_swarm, lab_shell, live_services, run_module

LAB = "nfail"
manager = functools.partial(lab_shell, LAB, "manager-1")
worker = functools.partial(lab_shell, LAB, "worker-1")


@pytest.fixture(scope="module")
def nfail(tmp_path_factory):
    with hand_made_swarm(LAB, tmp_path_factory.mktemp(LAB), workers=1) as formed:
        yield formed


class InBackground(threading.Thread):
    """run_module in a thread, so that the test can inject a failure while the module runs."""

    def __init__(self, *args, **kwargs):
        super().__init__(daemon=True)
        self.call = (args, kwargs)
        self.result = None
        self.start()

    def run(self):
        self.result = run_module(*self.call[0], **self.call[1])

    def outcome(self, timeout=300):
        self.join(timeout)
        assert self.result is not None, "the module did not finish within %d s" % timeout
        return self.result


def network_id(name):
    return manager("docker network inspect %s --format '{{.Id}}'" % name)


def start_users(image, network, subnet, services):
    """The network (attachable) and its services, each holding a secret and a config too:
    {name: (replicas, aliases, service create flags, command)}; returns the live services once they all run."""
    manager("docker network create -d overlay --attachable --subnet %s %s >/dev/null" % (subnet, network))
    manager("printf s3cr3t | docker secret create %s_secret - >/dev/null" % network)
    manager("printf conf | docker config create %s_config - >/dev/null" % network)
    for name, (replicas, aliases, flags, command) in services.items():
        attachment = ",".join(["name=%s" % network] + ["alias=%s" % a for a in aliases])
        manager(
            "docker service create -q --detach=true --name %s --replicas %d --network %s --secret %s_secret "
            "--config %s_config %s %s %s >/dev/null 2>&1"
            % (name, replicas, attachment, network, network, flags, image, command)
        )
    return converged(LAB, list(services))


def specs(live, names):
    return {name: live[name]["spec"] for name in names}


def test_a_new_subnet_overlapping_another_network_is_refused_before_any_service_is_touched(nfail):
    before = start_users(nfail["image"], "shared_a", "10.61.0.0/24", dict(users_a=(2, ["alpha", "beta"], "", "")))
    manager("docker network create -d overlay --subnet 10.62.0.0/24 other_a >/dev/null")
    old_id = network_id("shared_a")

    for check in (True, False):
        rc, result, _ = run_module(
            nfail["inventory"],
            "swarm_network",
            dict(name="shared_a", subnet="10.62.0.0/25", recreate=True),
            check=check,
        )
        assert rc != 0 and result["changed"] is False and result["touched"] == []
        assert result["msg"].startswith(
            "network shared_a: the new network would be refused, so nothing was changed and no service detached: "
            "subnet 10.62.0.0/25 overlaps subnet 10.62.0.0/24 of network other_a. Fix: choose a subnet that no other "
            "swarm network uses"
        )
    # A driver option every task on the new network would fail on: refused the same way.
    rc, result, _ = run_module(nfail["inventory"], "swarm_network", dict(name="shared_a", mtu=10, recreate=True))
    assert rc != 0 and result["changed"] is False and result["touched"] == []
    assert result["msg"].startswith(
        "network shared_a: the new network would be refused, so nothing was changed and no service detached: mtu 10 "
        "is outside 68-65535, so every task on the network would fail to start. Fix: give an mtu of at most"
    )
    after = live_services(LAB)
    assert after["users_a"] == before["users_a"]  # same spec, same version: not even an update
    assert network_id("shared_a") == old_id


def test_a_standalone_container_on_the_old_network_fails_the_recreate_and_every_service_is_attached_again(nfail):
    services = dict(users_b=(2, ["alpha", "beta"], "", ""), helper_b=(1, [], "", ""))
    before = start_users(nfail["image"], "shared_b", "10.63.0.0/24", services)
    old_id = network_id("shared_b")
    container = worker("docker run -d --network shared_b %s" % nfail["image"])[:12]

    rc, result, _ = run_module(
        nfail["inventory"], "swarm_network", dict(name="shared_b", labels={"rev": "2"}, recreate=True)
    )
    assert rc != 0 and result["changed"] is True and result["recreated"] is False
    assert sorted(result["touched"]) == ["helper_b", "users_b"]
    message = result["msg"]
    assert message.startswith(
        "network shared_b: the recreate failed: the old network could not be removed: a standalone container "
        "(%s, on worker-1) is attached to it. Undone: every detached service is attached to it again as before: "
        % container
    )
    assert "users_b (aliases alpha, beta)" in message and "helper_b (no aliases)" in message
    assert "Fix: disconnect it (docker network disconnect shared_b %s, on worker-1) or remove it" % container in message

    after = converged(LAB, list(services))
    assert specs(after, services) == specs(before, services)
    assert network_id("shared_b") == old_id
    assert all(after[name]["running"] == before[name]["running"] for name in services)
    worker("docker rm -f %s >/dev/null" % container)


def test_tasks_that_hold_the_old_network_beyond_the_timeout_fail_the_recreate_and_it_is_undone(nfail):
    # hold_d's task ignores SIGTERM and may take 90 s to stop: it keeps the old network past the module's timeout.
    services = dict(hold_d=(1, ["hold"], "--stop-grace-period 90s", "sleep 1000000"), users_d=(2, ["delta"], "", ""))
    before = start_users(nfail["image"], "shared_d", "10.66.0.0/24", services)
    old_id = network_id("shared_d")

    started = time.monotonic()
    rc, result, _ = run_module(
        nfail["inventory"], "swarm_network", dict(name="shared_d", labels={"rev": "2"}, recreate=True, timeout=15)
    )
    assert time.monotonic() - started < 85  # it gave up after its timeout, not when the task finally stopped
    assert rc != 0 and result["changed"] is True and result["recreated"] is False
    assert sorted(result["touched"]) == ["hold_d", "users_d"]
    message = result["msg"]
    assert message.startswith(
        "network shared_d: the recreate failed: the old network was still in use 15 s after its services were "
        "detached: 1 task still holds it, e.g. task "
    )
    assert (
        " of service hold_d on " in message
        and "(running). Undone: every detached service is attached to it again as before: " in message
    )
    assert "hold_d (aliases hold)" in message and "users_d (aliases delta)" in message
    assert message.endswith(
        "Fix: wait until it has stopped (docker service ps hold_d; a task that ignores SIGTERM stops after its stop "
        "grace period), or raise timeout, then run again."
    )

    after = converged(LAB, list(services), timeout=240)
    assert specs(after, services) == specs(before, services)
    assert network_id("shared_d") == old_id
    assert manager("docker network inspect shared_d --format '{{json .Labels}}'") in ("{}", "null")


def test_a_create_that_fails_after_the_removal_brings_the_network_and_its_services_back(nfail):
    # slow_c's task ignores SIGTERM, so it holds the old network for its stop grace period after being detached:
    # the window in which another network takes the new subnet.
    services = dict(slow_c=(1, ["slow"], "--stop-grace-period 8s", "sleep 1000000"), users_c=(2, ["alpha"], "", ""))
    before = start_users(nfail["image"], "shared_c", "10.64.0.0/24", services)
    old_id = network_id("shared_c")
    running = InBackground(
        nfail["inventory"], "swarm_network", dict(name="shared_c", subnet="10.65.0.0/24", recreate=True)
    )
    deadline = time.monotonic() + 60
    while old_id in manager("docker service inspect slow_c --format '{{json .Spec.TaskTemplate.Networks}}'"):
        assert time.monotonic() < deadline and running.is_alive(), "slow_c was never detached"
        time.sleep(0.2)
    manager("docker network create -d overlay --subnet 10.65.0.0/24 intruder_c >/dev/null")
    rc, result, _ = running.outcome()

    assert rc != 0 and result["recreated"] is False and sorted(result["touched"]) == ["slow_c", "users_c"]
    message = result["msg"]
    assert message.startswith(
        "network shared_c: the recreate failed: the engine accepted network shared_c but did not allocate it within "
        "10 s: subnet 10.65.0.0/24 overlaps subnet 10.65.0.0/24 of network intruder_c. Undone: network shared_c was "
        "created again with its previous settings (new ID "
    )
    assert "every detached service is attached to it again as before: " in message
    assert "slow_c (aliases slow)" in message and "users_c (aliases alpha)" in message
    assert message.endswith(
        "Fix: choose a subnet that no other swarm network uses (docker network inspect NAME "
        "--format '{{json .IPAM.Config}}' shows each network's), then run again."
    )

    after = converged(LAB, list(services))
    assert specs(after, services) == specs(before, services)
    restored = manager(
        "docker network inspect shared_c --format '{{.Id}} {{.Driver}} {{json .IPAM.Config}} {{.Attachable}}'"
    )
    assert restored.split()[0] != old_id and " overlay " in restored and "10.64.0.0/24" in restored
    assert restored.endswith("true")


def test_a_second_manager_names_secrets_alike_after_the_join_token_was_rotated(nfail):
    """The naming key is kept in the swarm: every manager, on every run, names a value alike."""
    args = dict(name="shared_password", data="s3cr3t-value")
    rc, first, _ = run_module(nfail["inventory"], "swarm_secret", args)
    assert rc == 0 and first["changed"] is True
    manager("docker node promote worker-1 >/dev/null && docker swarm join-token --rotate -q manager >/dev/null")
    deadline = time.monotonic() + 60
    while worker("docker info --format '{{.Swarm.ControlAvailable}}'") != "true":
        assert time.monotonic() < deadline, "worker-1 never became a manager"
        time.sleep(1)

    for target in ("worker-1", "manager-1"):
        for check in (True, False):
            rc, again, _ = run_module(nfail["inventory"], "swarm_secret", args, check=check, target=target)
            assert rc == 0 and again["changed"] is False, (target, check, again)
            assert (again["name"], again["id"], again["hmac"]) == (first["name"], first["id"], first["hmac"])
    rc, rotated, _ = run_module(nfail["inventory"], "swarm_secret", dict(args, data="new-value"), target="worker-1")
    assert rc == 0 and rotated["changed"] is True and rotated["name"] != first["name"]
    assert manager("docker config ls -q --filter name=swarmplane-version-key | wc -l") == "1"
