"""endpoint_probe's counting of answers and failures, with the connection replaced by a script of outcomes."""

from __future__ import annotations

import http.client

from ansible_collections.swarmplane.cluster.plugins.modules.endpoint_probe import probe_endpoint


def scripted(*outcomes):
    queue = list(outcomes)

    def send(host, port, mode, path, timeout):
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return send


def test_replies_are_counted_per_distinct_answer():
    result = probe_endpoint(
        dict(host="10.0.0.1", port=8080), 4, "http", "/", 1, send=scripted("a v1", "b v1", "a v1", "b v1")
    )
    assert result["answered"] == 4
    assert result["replies"] == {"a v1": 2, "b v1": 2}
    assert result["errors"] == []
    assert result["name"] == "10.0.0.1:8080"


def test_failures_are_kept_once_each_and_not_counted_as_answers():
    refused = ConnectionRefusedError(111, "Connection refused")
    result = probe_endpoint(
        dict(name="w", host="10.0.0.2", port=80, meta=dict(node="worker-1")),
        3,
        "http",
        "/",
        1,
        send=scripted(
            refused, ConnectionRefusedError(111, "Connection refused"), http.client.HTTPException("HTTP 502")
        ),
    )
    assert result["answered"] == 0
    assert result["errors"] == ["HTTP 502", "[Errno 111] Connection refused"]
    assert result["meta"] == dict(node="worker-1")
