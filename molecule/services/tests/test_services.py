"""What an operator checks after services were applied: the tasks and where they run, the published
port answering on each node that runs a task, and task-to-task traffic over the overlay network."""

import json
import os

import testinfra.utils.ansible_runner

INVENTORY = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
MANAGERS = INVENTORY.get_hosts("managers")
WORKERS = INVENTORY.get_hosts("workers")
testinfra_hosts = MANAGERS[:1]

FETCH = 'python3 -c "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())" %s'


def running_tasks(host, service):
    out = host.check_output("docker service ps %s --filter desired-state=running --format '{{json .}}'" % service)
    return [json.loads(line) for line in out.splitlines()]


def node_address(host, node):
    return host.check_output("docker node inspect --format '{{.Status.Addr}}' %s" % node)


def test_myweb_runs_two_tasks_on_two_workers(host):
    tasks = running_tasks(host, "myweb")
    assert len(tasks) == 2
    assert all(t["CurrentState"].startswith("Running") for t in tasks)
    assert sorted(t["Node"] for t in tasks) == sorted(WORKERS)


def test_host_mode_port_answers_on_each_node_that_runs_a_task(host):
    replies = set()
    for task in running_tasks(host, "myweb"):
        reply = host.check_output(FETCH % ("http://%s:8080/" % node_address(host, task["Node"])))
        assert reply.endswith("v1")
        replies.add(reply.split()[0])
    assert len(replies) == 2  # each node answered with its own replica


def test_overlay_carries_traffic_between_tasks_on_different_nodes(host):
    # From the task on one worker, every replica is reached through tasks.myweb on the backend overlay.
    worker = WORKERS[0]
    worker_host = host.get_host("ansible://" + worker, ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
    container = worker_host.check_output("docker ps -q --filter label=com.docker.swarm.service.name=myweb").split()[0]
    addresses = worker_host.check_output("docker exec %s nslookup tasks.myweb" % container)
    task_ips = [line.split()[-1] for line in addresses.splitlines() if line.startswith("Address") and "#" not in line]
    task_ips = [ip for ip in task_ips if ip.count(".") == 3][-2:]
    assert len(task_ips) == 2
    names = {
        worker_host.check_output("docker exec %s wget -qO- http://%s:8000/" % (container, ip)).split()[0]
        for ip in task_ips
    }
    assert len(names) == 2


def test_config_is_mounted_in_the_tasks(host):
    worker = running_tasks(host, "myweb")[0]["Node"]
    worker_host = host.get_host("ansible://" + worker, ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
    container = worker_host.check_output("docker ps -q --filter label=com.docker.swarm.service.name=myweb").split()[0]
    assert worker_host.check_output("docker exec %s cat /etc/motd" % container) == "hello from swarmplane"
