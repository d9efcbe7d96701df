#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: endpoint_probe
short_description: Send a bounded number of requests to TCP endpoints and report who answered
version_added: "0.2.0"
description:
  - Opens a new connection per request to every endpoint (HTTP GET, or a bare TCP connect) and reports, per endpoint,
    how many requests were answered, the distinct replies (the first line of each HTTP body, such as the name of
    the task that served it) and the errors.
  - Never fails for an endpoint that does not answer; the caller decides (verify.yml reports every node).
  - Made for checking a swarm's published ports from the controller, as a client outside the cluster sees them.
    Connects directly, never through a proxy.
options:
  endpoints:
    description: Where to connect.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Label of the endpoint in the result.
        type: str
      host:
        description: Address or name to connect to.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        required: true
      meta:
        description: Anything the caller wants back with this endpoint's result (what it stands for).
        type: dict
        default: {}
  requests:
    description: Requests per endpoint, each on a new connection.
    type: int
    default: 6
  mode:
    description: V(http) sends C(GET path) and reads the reply; V(tcp) only connects.
    type: str
    choices: [http, tcp]
    default: http
  path:
    description: Path of the HTTP request.
    type: str
    default: /
  timeout:
    description: Seconds allowed for each connection and reply.
    type: float
    default: 3
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Sends its requests in check mode too; it changes nothing.
  diff_mode:
    support: none
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Six requests through every node's published port
  swarmplane.cluster.endpoint_probe:
    endpoints:
      - {name: manager-1, host: 10.0.0.11, port: 8080}
      - {name: worker-1, host: 10.0.0.12, port: 8080}
  delegate_to: localhost
  register: probe
"""

RETURN = r"""
endpoints:
  description: One entry per endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - name: worker-1
      host: 10.0.0.12
      port: 8080
      requests: 6
      answered: 6
      replies: {"myweb.1.abc v1": 3, "myweb.2.def v1": 3}
      errors: []
      meta: {}
"""

import http.client
import socket

from ansible.module_utils.basic import AnsibleModule


def request_once(host, port, mode, path, timeout):
    """The first line of the reply's body (HTTP), or '' (TCP); raises OSError or HTTPException on failure."""
    if mode == "tcp":
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace").strip()
        first = body.splitlines()[0] if body else ""
        if response.status >= 500:
            raise http.client.HTTPException("HTTP %d %s" % (response.status, first))
        return first
    finally:
        connection.close()


def probe_endpoint(endpoint, requests, mode, path, timeout, send=request_once):
    replies, errors = {}, []
    for _attempt in range(requests):
        try:
            reply = send(endpoint["host"], endpoint["port"], mode, path, timeout)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(str(exc) or type(exc).__name__)
            continue
        replies[reply] = replies.get(reply, 0) + 1
    return dict(
        name=endpoint.get("name") or "%s:%d" % (endpoint["host"], endpoint["port"]),
        host=endpoint["host"],
        port=endpoint["port"],
        requests=requests,
        answered=sum(replies.values()),
        replies=replies,
        errors=sorted(set(errors)),
        meta=endpoint.get("meta") or {},
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoints=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str"),
                    host=dict(type="str", required=True),
                    port=dict(type="int", required=True),
                    meta=dict(type="dict", default={}),
                ),
            ),
            requests=dict(type="int", default=6),
            mode=dict(type="str", choices=["http", "tcp"], default="http"),
            path=dict(type="str", default="/"),
            timeout=dict(type="float", default=3),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["requests"] < 1:
        module.fail_json(msg="requests=%d: send at least one. Fix: requests: 1 or more." % params["requests"])
    results = [
        probe_endpoint(e, params["requests"], params["mode"], params["path"], params["timeout"])
        for e in params["endpoints"]
    ]
    module.exit_json(changed=False, endpoints=results)


if __name__ == "__main__":
    main()
