"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse, and the documented options match argument_spec."""

import ast
from pathlib import Path

import pytest
import yaml

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import ENGINE_ARGUMENT_SPEC
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import SERVICE_OPTIONS

# Argument specs that modules take from module_utils instead of spelling out.
SHARED_SPECS = dict(ENGINE_ARGUMENT_SPEC=ENGINE_ARGUMENT_SPEC, SERVICE_OPTIONS=SERVICE_OPTIONS)

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


def doc_strings(path):
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        name = getattr(node.targets[0], "id", "") if isinstance(node, ast.Assign) else ""
        if name in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            found[name] = node.value.value
    return found


def spec_keys(path):
    """Option names of the module's argument_spec: the keyword names of dict(...) calls in main()."""
    tree = ast.parse(path.read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    keys = set()
    for call in ast.walk(main):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "dict":
            keys.update(k.arg for k in call.keywords if k.arg)
            shared = [getattr(k.value, "id", "") for k in call.keywords if k.arg is None]
            shared += [getattr(a, "id", "") for a in call.args]
            for name in shared:
                keys.update(SHARED_SPECS.get(name, {}))
    return keys


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_documentation_examples_and_return_parse(path):
    docs = doc_strings(path)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert isinstance(yaml.safe_load(docs["EXAMPLES"]), list)
    assert isinstance(yaml.safe_load(docs["RETURN"]), dict)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_every_documented_option_is_in_the_argument_spec(path):
    options = set(yaml.safe_load(doc_strings(path)["DOCUMENTATION"])["options"])
    assert options <= spec_keys(path)
