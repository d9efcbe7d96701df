# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shell text that stops, starts or restarts a host's Docker engine, for the roles that do it (rolling engine
restarts in docker_engine, raft backup and restore in swarm_backup). A pure function of the host's init system."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: engine_control
short_description: Shell text that stops, starts or restarts the Docker engine of a host
description:
  - C(engine_control_script) returns a C(set -e) shell script for C(stop), C(start) or C(restart), given the host's
    service manager (the C(service_mgr) fact, or C(swarm_info)'s C(host.service_mgr)) and a timeout in seconds.
  - With an init system (systemd, sysvinit, openrc, upstart), C(service docker ...) bounded by C(timeout) (the
    docker unit has no start timeout of its own); on systemd, stopping also stops C(docker.socket), or the next
    call to the socket would start the engine again, and starting first clears a failed state.
  - Without one (a container used as a host, as in the lab), dockerd is stopped and started with
    C(start-stop-daemon), and the pid file of a dockerd that no longer runs is removed first (dockerd refuses to
    start on it).
"""

INIT_SYSTEMS = ("systemd", "sysvinit", "openrc", "upstart")
ACTIONS = ("stop", "start", "restart")
DOCKERD = "/usr/sbin/dockerd"
STALE_PIDFILE = "pgrep -x dockerd >/dev/null || rm -f /var/run/docker.pid"


def _with_init(action, timeout):
    if action == "stop":
        return [
            "if [ -d /run/systemd/system ]; then",
            "  systemctl stop docker.socket docker.service 2>/dev/null || systemctl stop docker.service",
            "else",
            "  timeout %d service docker stop" % timeout,
            "fi",
        ]
    return [
        "if [ -d /run/systemd/system ]; then systemctl reset-failed docker 2>/dev/null || true; fi",
        "timeout %d service docker %s" % (timeout, action),
    ]


def _without_init(action, timeout):
    lines = []
    if action in ("stop", "restart"):
        lines += ["start-stop-daemon --stop --oknodo --retry %d --exec %s" % (timeout, DOCKERD), STALE_PIDFILE]
    if action in ("start", "restart"):
        lines += [
            STALE_PIDFILE,
            "start-stop-daemon --start --background --oknodo --make-pidfile --pidfile /run/swarmplane-dockerd.pid "
            "--output /var/log/dockerd.log --exec %s" % DOCKERD,
        ]
    return list(dict.fromkeys(lines))  # a restart checks the pid file once


def engine_control_script(action, service_mgr, timeout=60):
    """`set -e` shell text that stops, starts or restarts the engine of a host whose init system is service_mgr."""
    if action not in ACTIONS:
        raise AnsibleFilterError(
            "engine_control_script: action must be one of %s, not %r" % (", ".join(ACTIONS), action)
        )
    try:
        seconds = int(timeout)
    except (TypeError, ValueError):
        raise AnsibleFilterError(
            "engine_control_script: timeout must be a number of seconds, not %r" % (timeout,)
        ) from None
    body = _with_init(action, seconds) if service_mgr in INIT_SYSTEMS else _without_init(action, seconds)
    return "\n".join(["set -e"] + body) + "\n"


class FilterModule:
    def filters(self):
        return {"engine_control_script": engine_control_script}
