"""The code that runs on managed hosts (modules, module_utils) parses as Python 3.8, the oldest target Python
ansible-core 2.19 supports (meta/runtime.yml requires 2.19; README: "Requirements")."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET_CODE = sorted([*(REPO / "plugins" / "modules").glob("*.py"), *(REPO / "plugins" / "module_utils").glob("*.py")])


@pytest.mark.parametrize("path", TARGET_CODE, ids=lambda p: p.name)
def test_target_code_parses_as_python_3_8(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))


def test_the_runtime_requirement_is_the_tested_ansible_core():
    runtime = (REPO / "meta" / "runtime.yml").read_text()
    pinned = next(
        line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("ansible-core==")
    )
    major_minor = ".".join(pinned.split("==")[1].split(".")[:2])
    assert 'requires_ansible: ">=%s.0"' % major_minor in runtime
