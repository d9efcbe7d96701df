"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse, and the documented options (the module's own and
those of its doc fragments) match argument_spec."""

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.swarmplane.cluster.plugins.module_utils.kernel import KERNEL_OPTIONS
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import ENGINE_ARGUMENT_SPEC
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import (
    PLANNED_OPTION,
    SERVICE_OPTIONS,
)

# Argument specs that modules take from module_utils instead of spelling out.
SHARED_SPECS = dict(
    ENGINE_ARGUMENT_SPEC=ENGINE_ARGUMENT_SPEC,
    SERVICE_OPTIONS=SERVICE_OPTIONS,
    PLANNED_OPTION=PLANNED_OPTION,
    KERNEL_OPTIONS=KERNEL_OPTIONS,
)
COLLECTION = "swarmplane.cluster."

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


def doc_strings(path):
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        name = getattr(node.targets[0], "id", "") if isinstance(node, ast.Assign) else ""
        if name in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            found[name] = node.value.value
    return found


def fragment_options(slug):
    """Options of one of this collection's doc fragments: 'swarmplane.cluster.service' (its DOCUMENTATION)
    or 'swarmplane.cluster.service.batch' (its BATCH), as ansible-doc reads them."""
    name, _, variable = slug[len(COLLECTION) :].partition(".")
    module = importlib.import_module("ansible_collections.swarmplane.cluster.plugins.doc_fragments." + name)
    text = getattr(module.ModuleDocFragment, (variable or "documentation").upper())
    return yaml.safe_load(text).get("options") or {}


def documented_options(path):
    """The module's options with those of its collection's doc fragments merged in, as ansible-doc shows them."""
    documentation = yaml.safe_load(doc_strings(path)["DOCUMENTATION"])
    options = dict(documentation.get("options") or {})
    for slug in documentation.get("extends_documentation_fragment") or []:
        if slug.startswith(COLLECTION):
            options = dict(fragment_options(slug), **options)  # the module's own text wins, as in ansible-doc
    return options


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
        if isinstance(call, ast.keyword) and call.arg == "argument_spec" and isinstance(call.value, ast.Name):
            keys.update(SHARED_SPECS.get(call.value.id, {}))  # AnsibleModule(argument_spec=KERNEL_OPTIONS)
    return keys


def spec_mismatches(documented, spec, where=""):
    """Differences between documented options and an argument_spec dict: names, type, elements, choices,
    default, required, recursively through suboptions."""
    problems = []
    for name in sorted(set(documented) ^ set(spec)):
        problems.append("%s%s: %s" % (where, name, "not documented" if name in spec else "not in argument_spec"))
    for name in sorted(set(documented) & set(spec)):
        doc, arg = documented[name], spec[name]
        for key in ("type", "elements", "choices", "default"):
            if doc.get(key) != arg.get(key):
                problems.append(
                    "%s%s.%s: documented %r, argument_spec %r" % (where, name, key, doc.get(key), arg.get(key))
                )
        if bool(doc.get("required")) != bool(arg.get("required")):
            problems.append("%s%s.required differs" % (where, name))
        if doc.get("suboptions") or arg.get("options"):
            problems += spec_mismatches(doc.get("suboptions") or {}, arg.get("options") or {}, "%s%s." % (where, name))
    return problems


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
    assert set(documented_options(path)) <= spec_keys(path)


def test_swarm_service_documents_every_service_option_as_the_argument_spec_defines_it():
    options = documented_options(Path(__file__).resolve().parents[2] / "plugins/modules/swarm_service.py")
    expected = dict(SERVICE_OPTIONS, **PLANNED_OPTION, **ENGINE_ARGUMENT_SPEC)
    assert spec_mismatches(options, expected) == []


def test_swarm_services_documents_the_options_of_each_service_in_the_list():
    options = documented_options(Path(__file__).resolve().parents[2] / "plugins/modules/swarm_services.py")
    expected = dict(
        services=dict(type="list", elements="dict", required=True, options=SERVICE_OPTIONS),
        **PLANNED_OPTION,
        **ENGINE_ARGUMENT_SPEC,
    )
    assert spec_mismatches(options, expected) == []
    assert len(options["services"]["suboptions"]) == len(SERVICE_OPTIONS) > 30


def test_host_kernel_and_the_probes_kernel_option_document_the_shared_kernel_options():
    modules = Path(__file__).resolve().parents[2] / "plugins/modules"
    assert spec_mismatches(documented_options(modules / "host_kernel.py"), KERNEL_OPTIONS) == []
    probe = documented_options(modules / "swarm_info.py")["kernel"]
    assert spec_mismatches(probe["suboptions"], KERNEL_OPTIONS) == []


def test_spec_mismatches_names_the_option_and_the_key():
    documented = dict(a=dict(type="str"), b=dict(type="list", elements="dict", suboptions=dict(c=dict(type="int"))))
    spec = dict(a=dict(type="int"), b=dict(type="list", elements="dict", options=dict(c=dict(type="int", default=1))))
    assert spec_mismatches(documented, spec) == [
        "a.type: documented 'str', argument_spec 'int'",
        "b.c.default: documented None, argument_spec 1",
    ]


@pytest.mark.parametrize("variable", ["DOCUMENTATION", "BATCH"])
def test_the_composed_service_fragments_pass_yamllint(variable):
    # ansible-test's yamllint reads string literals only; these fragments are composed, so they are linted here.
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    from ansible_collections.swarmplane.cluster.plugins.doc_fragments import service

    config = YamlLintConfig("extends: default\nrules: {document-start: disable, line-length: {max: 160}}")
    problems = list(linter.run(getattr(service.ModuleDocFragment, variable), config))
    assert problems == []


FILTERS = sorted((Path(__file__).resolve().parents[2] / "plugins" / "filter").glob("*.py"))


@pytest.mark.parametrize("path", FILTERS, ids=lambda p: p.stem)
def test_every_filter_plugin_file_documents_itself_in_yaml_that_parses(path):
    documentation = yaml.safe_load(doc_strings(path)["DOCUMENTATION"])
    assert documentation["name"] == path.stem
    assert documentation["short_description"] and documentation["description"]
