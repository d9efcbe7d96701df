# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Versioned swarm secrets and configs: the shared half of swarm_secret and swarm_config.

A swarm secret or config cannot change its data once created, and cannot be removed while a
service uses it. So a logical name (``db_password``) maps to versioned objects named
``<name>_<first 12 hex of sha256>`` and labelled ``swarmplane.name`` / ``swarmplane.sha256``:
a new value is a new object next to the old ones, services move to it with an ordinary
service update, and versions no service uses any more are pruned.

Two halves:
- Pure functions (no engine, no Ansible): hashing, version names, which versions belong to a
  name and in which order, which object holds a value, which services use an object, which
  versions to prune. Unit-tested directly.
- VersionedObjectManager: the module's run, on an EngineClient (or anything with its methods).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    EngineClient,
    SwarmDecisionError,
)

NAME_LABEL = "swarmplane.name"
HASH_LABEL = "swarmplane.sha256"
HASH_CHARS = 12
# The engine's rule for secret and config names (swarmkit api/validation).
MAX_NAME_LENGTH = 64
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")


class Kind:
    """What differs between secrets and configs: API names, service references, size limit."""

    def __init__(self, name, refs_key, id_key, name_key, max_size, data_readable):
        self.name = name  # "secret" / "config"
        self.module = "swarm_%s" % name
        self.refs_key = refs_key  # ContainerSpec key listing the references
        self.id_key = id_key
        self.name_key = name_key
        self.max_size = max_size  # bytes; the engine refuses this size and larger
        self.data_readable = data_readable  # the engine returns Spec.Data (configs only)
        self.path = "/%ss" % name
        self.cli = "docker %s" % name


SECRET = Kind("secret", "Secrets", "SecretID", "SecretName", 500 * 1024, data_readable=False)
CONFIG = Kind("config", "Configs", "ConfigID", "ConfigName", 1000 * 1024, data_readable=True)


# --------------------------------------------------------------------------- pure logic: values and names


def content_hash(data):
    """Full sha256 hex digest of the bytes (str is hashed as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def versioned_name(name, digest):
    """The swarm object name of one version: <name>_<first 12 hex of the sha256>."""
    return "%s_%s" % (name, digest[:HASH_CHARS])


def version_name(name, data):
    """The swarm object name of the version of `name` that holds `data` (bytes or str)."""
    return versioned_name(name, content_hash(data))


def check_name(name, versioned, kind):
    """Raise SwarmDecisionError when the engine would refuse the (versioned) name."""
    if not NAME_PATTERN.match(name or ""):
        raise SwarmDecisionError(
            "the name may only hold letters, digits, '-', '_' and '.', and must start and end with a letter "
            "or digit: choose another name"
        )
    longest = MAX_NAME_LENGTH - (HASH_CHARS + 1 if versioned else 0)
    if len(name) > longest:
        raise SwarmDecisionError(
            "the name is %d characters long; a %s name holds at most %d%s: choose a shorter name"
            % (
                len(name),
                kind.name,
                longest,
                " once the version suffix (_ and %d hex) is added" % HASH_CHARS if versioned else "",
            )
        )


def resolve_data(data=None, data_src=None, data_is_b64=False):
    """The bytes to store: data (decoded from base64 with data_is_b64) or the file data_src on the target.

    Raises SwarmDecisionError saying what is wrong with the input.
    """
    if data_src is not None:
        try:
            with open(data_src, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise SwarmDecisionError(
                "cannot read data_src %s (%s): give a readable file on the managed host "
                "(data_src is read there, not on the controller)" % (data_src, exc.strerror or exc)
            ) from None
    if data is None:
        raise SwarmDecisionError("state=present needs data or data_src")
    if data_is_b64:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise SwarmDecisionError(
                "data_is_b64 is true but data is not valid base64: encode it (b64encode filter) or set data_is_b64: false"
            ) from None
    return data.encode("utf-8")


def check_size(data, kind):
    if not data:
        raise SwarmDecisionError("the data is empty, and the engine refuses an empty %s: give some content" % kind.name)
    if len(data) >= kind.max_size:
        raise SwarmDecisionError(
            "the data is %d bytes; a swarm %s must be smaller than %d bytes: store less (or mount a volume instead)"
            % (len(data), kind.name, kind.max_size)
        )


def object_name(obj):
    return ((obj or {}).get("Spec") or {}).get("Name")


def object_labels(obj):
    return dict(((obj or {}).get("Spec") or {}).get("Labels") or {})


def user_labels(labels):
    """Labels without swarmplane's own."""
    return {k: v for k, v in (labels or {}).items() if k not in (NAME_LABEL, HASH_LABEL)}


def wanted_labels(name, digest, labels):
    """The labels of a version: the user's (as strings), then swarmplane's, which win."""
    result = {str(k): str(v) for k, v in (labels or {}).items()}
    result.update({NAME_LABEL: name, HASH_LABEL: digest})
    return result


def object_hash(obj, kind):
    """sha256 of an object's data: its label, else (configs only) computed from Spec.Data; None if unknown."""
    digest = object_labels(obj).get(HASH_LABEL)
    if digest:
        return digest
    data = ((obj or {}).get("Spec") or {}).get("Data")
    if kind.data_readable and data:
        try:
            return content_hash(base64.b64decode(data))
        except (binascii.Error, ValueError):
            return None
    return None


def created_key(obj):
    """Sort key of an object's creation time: (date and time to the second, nanoseconds, raft version).

    CreatedAt is RFC 3339 with up to nine digits of fraction and trailing zeros dropped, so the text
    alone does not sort.
    """
    text = str((obj or {}).get("CreatedAt") or "")
    digits = ""
    if text[19:20] == ".":
        for ch in text[20:]:
            if not ch.isdigit():
                break
            digits += ch
    nanos = int((digits + "0" * 9)[:9]) if digits else 0
    return (text[:19], nanos, ((obj or {}).get("Version") or {}).get("Index") or 0)


def versions_of(objects, name):
    """The objects of a logical name, newest first: those labelled swarmplane.name=<name> and the one named <name>."""
    found = [o for o in objects or [] if object_labels(o).get(NAME_LABEL) == name or object_name(o) == name]
    return sorted(found, key=created_key, reverse=True)


def find_for_hash(versions, digest, kind, prefer=None):
    """The version holding the data of that sha256 (the one named `prefer` if several do), or None."""
    matching = [v for v in versions if object_hash(v, kind) == digest]
    for version in matching:
        if object_name(version) == prefer:
            return version
    return matching[0] if matching else None


def service_refs(service, kind, previous=False):
    """IDs and names of the secrets (configs) a service references; with previous, its PreviousSpec too."""
    refs = set()
    specs = [service.get("Spec")]
    if previous:
        specs.append(service.get("PreviousSpec"))
    for spec in specs:
        container = ((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        for ref in container.get(kind.refs_key) or []:
            refs.update((ref.get(kind.id_key), ref.get(kind.name_key)))
        if kind is CONFIG:  # a credential spec can name a config too (Windows gMSA)
            refs.add(((container.get("Privileges") or {}).get("CredentialSpec") or {}).get("Config"))
    refs.discard(None)
    refs.discard("")
    return refs


def services_using(services, obj, kind, previous=False):
    """Sorted names of the services whose spec references the object (by ID or name)."""
    wanted = {obj.get("ID"), object_name(obj)} - {None, ""}
    return sorted(
        (s.get("Spec") or {}).get("Name") or s.get("ID")
        for s in services or []
        if wanted & service_refs(s, kind, previous)
    )


def choose_prune(ordered, keep, in_use):
    """Names to prune of `ordered` (the current version first, then the others newest first).

    The current version and the `keep` newest others stay; older ones go unless in use.
    """
    if keep < 0:
        raise SwarmDecisionError("keep_versions is %d: give 0 or more" % keep)
    return [n for n in ordered[1:][keep:] if n not in set(in_use or ())]


def version_rows(versions, kind):
    """[{name, sha256}] of versions, for diffs: names and hashes, never data."""
    return [dict(name=object_name(v), sha256=object_hash(v, kind)) for v in versions]


# --------------------------------------------------------------------------- the module's run


class VersionedObjectManager:
    """Runs swarm_secret or swarm_config: kind is SECRET or CONFIG; client defaults to EngineClient(module)."""

    def __init__(self, module, kind, client=None):
        self.module = module
        self.params = module.params
        self.kind = kind
        self.client = client or EngineClient(module)
        self.client.require_manager("%s %s: %s" % (kind.name, self.params["name"], kind.module))

    # ----------------------------------------------------------------- engine access

    def _objects(self):
        api = self.client.api
        return self.client.call("listing %ss" % self.kind.name, getattr(api, "%ss" % self.kind.name)) or []

    def _services(self):
        return self.client.call("listing services", self.client.api.services) or []

    def _create(self, name, data, labels):
        text = self.client.post_json(
            "creating %s %s" % (self.kind.name, name),
            "%s/create" % self.kind.path,
            dict(Name=name, Labels=labels, Data=base64.b64encode(data).decode("ascii")),
        )
        try:
            return json.loads(text or "{}").get("ID")
        except ValueError:
            return None

    def _remove(self, obj):
        remove = getattr(self.client.api, "remove_%s" % self.kind.name)
        self.client.call(
            "removing %s %s (%s rm %s)" % (self.kind.name, object_name(obj), self.kind.cli, object_name(obj)),
            remove,
            obj["ID"],
        )

    def _update_labels(self, obj, labels):
        self.client.post_json(
            "updating the labels of %s %s" % (self.kind.name, object_name(obj)),
            "%s/%s/update" % (self.kind.path, obj["ID"]),
            dict(Name=object_name(obj), Labels=labels),
            params=dict(version=(obj.get("Version") or {}).get("Index")),
        )

    # ----------------------------------------------------------------- run

    def run(self):
        name = self.params["name"]
        try:
            check_name(name, self.params["versioned"], self.kind)
            if self.params["keep_versions"] < 0:
                raise SwarmDecisionError("keep_versions is %d: give 0 or more" % self.params["keep_versions"])
            objects = self._objects()
            services = self._services()
            if self.params["state"] == "absent":
                return self._absent(objects, services)
            return self._present(objects, services)
        except SwarmDecisionError as exc:
            self.client.fail("%s %s: %s" % (self.kind.name, name, exc))

    def _users_of_any(self, versions, services):
        users = set()
        for version in versions:
            users.update(services_using(services, version, self.kind))
        return sorted(users)

    def _present(self, objects, services):
        name, kind = self.params["name"], self.kind
        data = resolve_data(self.params.get("data"), self.params.get("data_src"), self.params.get("data_is_b64"))
        check_size(data, kind)
        digest = content_hash(data)
        versions = versions_of(objects, name)

        if self.params["versioned"]:
            target = versioned_name(name, digest)
            current = find_for_hash(versions, digest, kind, prefer=target)
            replace = None
            if current is None:
                clash = next((o for o in objects if object_name(o) == target), None)
                if clash is not None:
                    raise SwarmDecisionError(
                        "a %s named %s exists but is not a version of %s (its labels %s=%s, %s=%s do not match): "
                        "remove it (%s rm %s) or choose another name"
                        % (
                            kind.name,
                            target,
                            name,
                            NAME_LABEL,
                            object_labels(clash).get(NAME_LABEL),
                            HASH_LABEL,
                            object_labels(clash).get(HASH_LABEL),
                            kind.cli,
                            target,
                        )
                    )
        else:
            target = name
            current = next((o for o in objects if object_name(o) == name), None)
            replace = None
            if current is not None and object_hash(current, kind) != digest:
                users = services_using(services, current, kind)
                if users:
                    why = (
                        "its value changed"
                        if object_hash(current, kind)
                        else "it has no %s label, so its value cannot be compared (the engine never returns %s data)"
                        % (HASH_LABEL, kind.name)
                    )
                    raise SwarmDecisionError(
                        "%s, and a swarm %s cannot change in place while services use it: %s. Set versioned: true "
                        "to create a new version next to it and point the services at the name this module returns, "
                        "or remove the %s from those services first" % (why, kind.name, ", ".join(users), kind.name)
                    )
                replace, current = current, None

        if current is not None:
            target = object_name(current)
        # Before the run, services were meant to use the object holding this value, else the one
        # replaced, else the newest version.
        shown = current or replace or (versions[0] if versions else None)
        before = dict(
            name=object_name(shown),
            sha256=object_hash(shown, kind) if shown else None,
            labels=object_labels(shown),
            versions=version_rows(versions, kind),
        )

        keep_labels = self.params.get("labels")
        if keep_labels is None:
            keep_labels = user_labels(object_labels(current)) if current is not None else {}
        labels = wanted_labels(name, digest, keep_labels)

        changed = False
        object_id = current.get("ID") if current is not None else None
        if current is None:
            changed = True
            if not self.module.check_mode:
                if replace is not None:
                    self._remove(replace)
                object_id = self._create(target, data, labels)
        elif object_labels(current) != labels:
            changed = True
            if not self.module.check_mode:
                self._update_labels(current, labels)

        others = [v for v in versions if object_name(v) != target]
        ordered = [target] + [object_name(v) for v in others]
        in_use = {object_name(v) for v in others if services_using(services, v, kind, previous=True)}
        pruned = choose_prune(ordered, self.params["keep_versions"], in_use)
        for version in others:
            if object_name(version) in pruned:
                changed = True
                if not self.module.check_mode:
                    self._remove(version)

        remaining = [n for n in ordered if n not in pruned]
        hashes = {object_name(v): object_hash(v, kind) for v in others}
        hashes[target] = digest
        return dict(
            changed=changed,
            name=target,
            id=object_id,
            sha256=digest,
            versions=remaining,
            pruned=pruned,
            services=self._users_of_any(versions, services),
            diff=dict(
                before=before,
                after=dict(
                    name=target,
                    sha256=digest,
                    labels=labels,
                    versions=[dict(name=n, sha256=hashes.get(n)) for n in remaining],
                ),
            ),
        )

    def _absent(self, objects, services):
        name, kind = self.params["name"], self.kind
        versions = versions_of(objects, name)
        removed, kept = [], []
        for version in versions:
            users = services_using(services, version, kind)
            if users:
                kept.append((version, users))
                continue
            if not self.module.check_mode:
                self._remove(version)
            removed.append(object_name(version))
        remaining = [object_name(v) for v, _ in kept]
        result = dict(
            changed=bool(removed),
            versions=remaining,
            pruned=removed,
            services=self._users_of_any(versions, services),
            diff=dict(
                before=dict(versions=version_rows(versions, kind)),
                after=dict(versions=version_rows([v for v, _ in kept], kind)),
            ),
        )
        if kept:
            result.pop("diff")
            self.client.fail(
                "%s %s: %s still used by services, so not removed: %s. Remove the %s from those services "
                "(docker service update --%s-rm NAME SERVICE) or remove the services, then run again%s"
                % (
                    kind.name,
                    name,
                    "this version is" if len(kept) == 1 else "these versions are",
                    "; ".join("%s (used by %s)" % (object_name(v), ", ".join(u)) for v, u in kept),
                    kind.name,
                    kind.name,
                    " (the unused versions %s %s removed)"
                    % (", ".join(removed), "would be" if self.module.check_mode else "were")
                    if removed
                    else "",
                ),
                **result,
            )
        return result
