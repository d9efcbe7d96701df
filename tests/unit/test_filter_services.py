"""Filters of the services path of the swarm role (plugins/filter/services.py)."""

from __future__ import annotations

from ansible_collections.swarmplane.cluster.plugins.filter.services import (
    FilterModule,
    swarm_placement_table,
    swarm_planned_objects,
    swarm_service_args,
)


def test_planned_objects_are_what_check_mode_would_create_by_swarm_name():
    networks = [
        dict(item=dict(name="backend"), changed=True, network={}),  # would be created
        dict(item=dict(name="front"), changed=True, network=dict(id="n1")),  # exists (would be recreated)
        dict(item=dict(name="same"), changed=False, network=dict(id="n2")),
    ]
    secrets = [
        dict(item=dict(name="db"), changed=True, name="db_0123456789ab", id=None),  # a new version
        dict(item=dict(name="api"), changed=False, name="api_ba9876543210", id="s1"),
        dict(item=dict(name="old"), changed=True, name="old_aaaaaaaaaaaa", id="s2"),  # pruned, not created
    ]
    configs = [dict(item=dict(name="site"), changed=True, name="site_0123456789ab", id=None)]
    assert swarm_planned_objects(networks, secrets, configs) == dict(
        networks=["backend"], secrets=["db_0123456789ab"], configs=["site_0123456789ab"]
    )


def test_planned_objects_of_skipped_or_missing_tasks_are_none():
    assert swarm_planned_objects() == dict(networks=[], secrets=[], configs=[])
    assert swarm_planned_objects([dict(item=dict(name="x"), skipped=True)]) == dict(networks=[], secrets=[], configs=[])


def test_service_args_point_secrets_at_their_current_version_and_keep_the_file_name():
    results = [dict(item=dict(name="db"), name="db_0123456789ab")]
    args = swarm_service_args(dict(name="web", state="present", secrets=["db"]), secret_results=results)
    assert args == dict(name="web", secrets=[dict(source="db_0123456789ab", target="db")])


def test_the_plays_filters_are_exposed():
    assert {"swarm_planned_objects", "swarm_service_args", "swarm_placement_table"} <= set(FilterModule().filters())


def test_placement_table_names_each_service_and_shows_the_plan_in_check_mode():
    results = [
        dict(name="web", outcome="changed", running=2, tasks=[dict(slot=1, node="w1"), dict(slot=2, node="w2")]),
        dict(name="api", outcome="would change", changed=True),  # check mode: nothing read after the plan
        dict(name="db", outcome="unchanged", changed=False),
    ]
    assert swarm_placement_table(results).splitlines() == [
        "web: 2 running (web.1 on w1, web.2 on w2)",
        "api: would change",
        "db: unchanged",
    ]
