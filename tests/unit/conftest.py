"""Shared setup of the unit tests.

The repository root is the collection swarmplane.cluster, and .collections/ansible_collections/swarmplane/cluster
links back to it: with .collections on sys.path the plugins import each other by their collection path, as they
do when Ansible runs them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

COLLECTIONS_PATH = Path(__file__).resolve().parents[2] / ".collections"
if str(COLLECTIONS_PATH) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_PATH))


class FakeModule:
    """The parts of AnsibleModule the pure logic touches: params, check_mode, warn() and run_command()."""

    def __init__(self, params=None, check_mode=False, commands=None):
        self.params = dict(params or {})
        self.check_mode = check_mode
        self.warnings = []
        self.calls = []
        # argv tuple -> (rc, stdout, stderr); any other command succeeds silently.
        self.commands = dict(commands or {})

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, args, **kwargs):
        self.calls.append(list(args))
        return self.commands.get(tuple(args), (0, "", ""))


@pytest.fixture
def fake_module():
    """Factory of FakeModule objects: fake_module(params=..., check_mode=..., commands=...)."""
    return FakeModule
