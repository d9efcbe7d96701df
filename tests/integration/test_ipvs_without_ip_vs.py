"""On a kernel without IPVS (this machine's, seen from a lab host), the ipvs module says so and changes nothing, and
ipvs_info reports it instead of failing when asked to."""

import json

import yaml
from conftest import run_playbook, write_inventory


def run_task(lab, tmp_path, task):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    play = tmp_path / "play.yml"
    task = dict(task, register="result")
    show = {"name": "Show the result", "ansible.builtin.debug": {"msg": "RESULT {{ result | to_json }} END"}}
    play.write_text(yaml.safe_dump([dict(name="One task", hosts="worker-1", gather_facts=False, tasks=[task, show])]))
    result = run_playbook(inventory, str(play))
    return result, " ".join(result.stdout.split())


def test_the_ipvs_module_names_the_missing_kernel_support(lab, tmp_path):
    task = {
        "name": "Declare a virtual service",
        "swarmplane.cluster.ipvs": {
            "services": [{"address": "10.0.0.1", "port": 80, "real_servers": [{"address": "10.0.0.2"}]}]
        },
        "ignore_errors": True,
    }
    result, text = run_task(lab, tmp_path, task)
    assert result.returncode == 0, text[-2000:]
    assert "has no IPVS: the ip_vs module is not loaded and `modprobe ip_vs` failed" in text, text[-2000:]
    assert "Fix: run this on a kernel built with CONFIG_IP_VS" in text


def test_ipvs_info_reports_the_missing_kernel_support_when_asked_not_to_fail(lab, tmp_path):
    task = {"name": "Read the table", "swarmplane.cluster.ipvs_info": {"fail_on_unavailable": False}}
    result, text = run_task(lab, tmp_path, task)
    assert result.returncode == 0, text[-2000:]
    reported = json.loads(text.split("RESULT ", 1)[1].split(" END", 1)[0])
    assert reported["available"] is False
    assert reported["reason"].startswith("the kernel has no IPVS")
