"""engine_control_script: the engine's stop/start/restart shell text per init system."""

import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.swarmplane.cluster.plugins.filter.engine_control import engine_control_script


@pytest.mark.parametrize("action", ["stop", "start", "restart"])
@pytest.mark.parametrize("service_mgr", ["systemd", "sysvinit", "openrc", "upstart", "unknown", "tini", None])
def test_every_script_is_valid_sh_that_stops_on_the_first_error(action, service_mgr):
    script = engine_control_script(action, service_mgr, 45)
    assert script.startswith("set -e\n")
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_systemd_stop_takes_the_socket_too_and_start_clears_a_failed_state():
    stop = engine_control_script("stop", "systemd", 30)
    assert "systemctl stop docker.socket docker.service" in stop
    assert "timeout 30 service docker stop" in stop  # init systems other than systemd
    start = engine_control_script("start", "systemd", 30)
    assert "systemctl reset-failed docker" in start and "timeout 30 service docker start" in start
    assert "timeout 30 service docker restart" in engine_control_script("restart", "openrc", 30)


def test_without_an_init_system_dockerd_is_stopped_then_started_once_with_the_stale_pid_file_removed():
    lines = engine_control_script("restart", "unknown", 20).splitlines()
    stop = next(i for i, line in enumerate(lines) if "start-stop-daemon --stop" in line)
    start = next(i for i, line in enumerate(lines) if "start-stop-daemon --start" in line)
    pidfile = [i for i, line in enumerate(lines) if "rm -f /var/run/docker.pid" in line]
    assert stop < pidfile[0] < start and len(pidfile) == 1
    assert "--retry 20" in lines[stop]
    assert "start-stop-daemon --start" not in engine_control_script("stop", "unknown", 20)
    assert "start-stop-daemon --stop" not in engine_control_script("start", "unknown", 20)


def test_service_is_never_used_without_an_init_system():
    for action in ("stop", "start", "restart"):
        assert "service docker" not in engine_control_script(action, "unknown")


@pytest.mark.parametrize(
    ("action", "timeout", "message"),
    [
        ("reload", 60, "action must be one of stop, start, restart, not 'reload'"),
        ("stop", "soon", "timeout must be a number of seconds, not 'soon'"),
    ],
)
def test_bad_arguments_are_refused(action, timeout, message):
    with pytest.raises(AnsibleFilterError, match=message):
        engine_control_script(action, "systemd", timeout)
