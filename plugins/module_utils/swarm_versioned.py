# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Versioned swarm secrets and configs: the shared half of swarm_secret and swarm_config.

A swarm secret or config cannot change its data once created, and cannot be removed while a
service uses it. So a logical name (``db_password``) maps to versioned objects named
``<name>_<first 12 hex of a keyed digest>`` and labelled ``swarmplane.name`` / ``swarmplane.hmac``:
a new value is a new object next to the old ones, services move to it with an ordinary
service update, and versions no service (nor a service's rollback target) needs are pruned.

The digest is an HMAC-SHA256 of the value under the swarm's naming key, so names, labels, results
and diffs change with the value but tell nothing about it. The key is the config
``swarmplane-version-key``: readable by every manager (the engine never returns secret data, so a
secret could not hold it), created on first use from the manager join token (so a dry run on a new
swarm names exactly what the real run creates) and never derived again, so rotating the join tokens
changes no name. Versions named by earlier releases (``<name>_<sha256 prefix>``, label
``swarmplane.sha256``) are recognised, never reused: the next run rotates to a keyed version like any
new value, and the old one goes as soon as no service or rollback needs it.

Two halves:
- Pure functions (no engine, no Ansible): digests, version names, which versions belong to a name and
  in which order, which object holds a value, which services (or rollback targets) need an object,
  which versions to prune. Unit-tested directly.
- VersionedObjectManager: the module's run, on an EngineClient (or anything with its methods).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    APIError,
    EngineClient,
    EngineError,
    SwarmDecisionError,
)

NAME_LABEL = "swarmplane.name"
DIGEST_LABEL = "swarmplane.hmac"
# Versions named by releases before the keyed digest: <name>_<first 12 hex of the plain sha256>.
LEGACY_HASH_LABEL = "swarmplane.sha256"
DIGEST_CHARS = 12
KEY_CONFIG = "swarmplane-version-key"
KEY_LABELS = {"swarmplane.role": "version-key"}
KEY_DERIVATION = b"swarmplane.cluster version names v1"
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


# --------------------------------------------------------------------------- pure logic: keys, digests, names


def as_bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else data


def derive_key(manager_token):
    """The first naming key of a swarm: one-way from its manager join token, which only managers can read."""
    return hmac.new(as_bytes(manager_token), KEY_DERIVATION, hashlib.sha256).hexdigest().encode("ascii")


def version_digest(key, kind, name, data):
    """HMAC-SHA256 (hex) of a value under the swarm's key. Kind and name are mixed in, so two secrets holding
    the same value get unrelated names."""
    message = b"\0".join((kind.name.encode("ascii"), name.encode("utf-8"), as_bytes(data)))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def version_name(name, digest):
    """The swarm object name of one version: <name>_<first 12 hex of its digest>."""
    return "%s_%s" % (name, digest[:DIGEST_CHARS])


def legacy_sha256(data):
    """The plain sha256 earlier releases labelled versions with; compared locally, never shown."""
    return hashlib.sha256(as_bytes(data)).hexdigest()


def check_name(name, versioned, kind):
    """Raise SwarmDecisionError when the engine would refuse the (versioned) name."""
    if not NAME_PATTERN.match(name or ""):
        raise SwarmDecisionError(
            "the name may only hold letters, digits, '-', '_' and '.', and must start and end with a letter "
            "or digit. Fix: choose another name"
        )
    if name == KEY_CONFIG:
        raise SwarmDecisionError("the name %s is the swarm's naming key. Fix: choose another name" % KEY_CONFIG)
    longest = MAX_NAME_LENGTH - (DIGEST_CHARS + 1 if versioned else 0)
    if len(name) > longest:
        raise SwarmDecisionError(
            "the name is %d characters long; a %s name holds at most %d%s. Fix: choose a shorter name"
            % (
                len(name),
                kind.name,
                longest,
                " once the version suffix (_ and %d hex) is added" % DIGEST_CHARS if versioned else "",
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
                "cannot read data_src %s (%s). Fix: give a readable file on the managed host "
                "(data_src is read there, not on the controller)" % (data_src, exc.strerror or exc)
            ) from None
    if data is None:
        raise SwarmDecisionError("state=present needs data or data_src")
    if data_is_b64:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise SwarmDecisionError(
                "data_is_b64 is true but data is not valid base64. Fix: encode it (b64encode filter) or set "
                "data_is_b64: false"
            ) from None
    return data.encode("utf-8")


def check_size(data, kind):
    if not data:
        raise SwarmDecisionError(
            "the data is empty, and the engine refuses an empty %s. Fix: give some content" % kind.name
        )
    if len(data) >= kind.max_size:
        raise SwarmDecisionError(
            "the data is %d bytes; a swarm %s must be smaller than %d bytes. Fix: store less (or mount a volume "
            "instead)" % (len(data), kind.name, kind.max_size)
        )


# --------------------------------------------------------------------------- pure logic: objects and versions


def object_name(obj):
    return ((obj or {}).get("Spec") or {}).get("Name")


def object_labels(obj):
    return dict(((obj or {}).get("Spec") or {}).get("Labels") or {})


def object_digest(obj):
    """The keyed digest an object is labelled with, or None (a legacy or hand-made object)."""
    return object_labels(obj).get(DIGEST_LABEL)


def user_labels(labels):
    """Labels without swarmplane's own."""
    return {k: v for k, v in (labels or {}).items() if k not in (NAME_LABEL, DIGEST_LABEL, LEGACY_HASH_LABEL)}


def wanted_labels(name, digest, labels):
    """The labels of a version: the user's (as strings), then swarmplane's, which win."""
    result = {str(k): str(v) for k, v in user_labels(labels).items()}
    result.update({NAME_LABEL: name, DIGEST_LABEL: digest})
    return result


def shown_labels(labels):
    """Labels as results and diffs show them: a legacy plain hash of the value is hidden."""
    return {k: "(hidden)" if k == LEGACY_HASH_LABEL else v for k, v in (labels or {}).items()}


def holds(obj, data, digest, kind):
    """Whether the object holds `data`: True, False, or None when nothing tells (a hand-made secret).

    A config's own data decides; else the keyed digest label (made under this key: `digest`), else the
    legacy sha256 label.
    """
    stored = ((obj or {}).get("Spec") or {}).get("Data")
    if kind.data_readable and stored:
        try:
            return base64.b64decode(stored) == data
        except (binascii.Error, ValueError):
            return None
    labels = object_labels(obj)
    if labels.get(DIGEST_LABEL):
        return labels[DIGEST_LABEL] == digest
    if labels.get(LEGACY_HASH_LABEL):
        return labels[LEGACY_HASH_LABEL] == legacy_sha256(data)
    return None


def legacy_named(obj, name):
    """Whether a version's name carries a plain hash of its value (named by an earlier release)."""
    return (
        LEGACY_HASH_LABEL in object_labels(obj) and DIGEST_LABEL not in object_labels(obj) and object_name(obj) != name
    )


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


def find_holder(versions, data, digest, kind, prefer=None):
    """The version holding `data` (the one named `prefer` if several do), or None."""
    matching = [v for v in versions if holds(v, data, digest, kind)]
    for version in matching:
        if object_name(version) == prefer:
            return version
    return matching[0] if matching else None


# --------------------------------------------------------------------------- pure logic: services


def spec_refs(spec, kind):
    """IDs and names of the secrets (configs) a service spec references."""
    container = ((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    refs = set()
    for ref in container.get(kind.refs_key) or []:
        refs.update((ref.get(kind.id_key), ref.get(kind.name_key)))
    if kind is CONFIG:  # a credential spec can name a config too (Windows gMSA)
        refs.add(((container.get("Privileges") or {}).get("CredentialSpec") or {}).get("Config"))
    return refs - {None, ""}


def service_name(service):
    return (service.get("Spec") or {}).get("Name") or service.get("ID")


def _references(obj):
    return {obj.get("ID"), object_name(obj)} - {None, ""}


def services_using(services, obj, kind):
    """Sorted names of the services whose current spec references the object (by ID or name)."""
    return sorted(service_name(s) for s in services or [] if _references(obj) & spec_refs(s.get("Spec"), kind))


def rollback_targets(services, obj, kind):
    """Sorted names of the services whose previous spec (what `docker service rollback` returns to) references
    the object while their current spec does not. The engine removes such an object without a word, and the
    rollback then fails."""
    wanted = _references(obj)
    return sorted(
        service_name(s)
        for s in services or []
        if wanted & spec_refs(s.get("PreviousSpec"), kind) and not wanted & spec_refs(s.get("Spec"), kind)
    )


def needed_by(services, obj, kind):
    """(services using the object, services whose rollback target uses it): one rule for pruning and removal."""
    return services_using(services, obj, kind), rollback_targets(services, obj, kind)


def choose_prune(ordered, keep, needed, legacy=()):
    """Names to prune of `ordered` (the current version first, then the others newest first).

    The current version and the `keep` newest others stay; older ones go unless needed. Legacy-named
    versions hold no slot: they go as soon as nothing needs them, since their names tell a hash of the value.
    """
    if keep < 0:
        raise SwarmDecisionError("keep_versions is %d. Fix: give 0 or more" % keep)
    legacy = set(legacy)
    kept = [n for n in ordered[1:] if n not in legacy][:keep]
    return [n for n in ordered[1:] if n not in kept and n not in set(needed or ())]


def version_rows(versions):
    """[{name, hmac}] of versions, for diffs: names and keyed digests, never data nor plain hashes."""
    return [dict(name=object_name(v), hmac=object_digest(v)) for v in versions]


def need_text(users, rollback):
    parts = ["used by %s" % ", ".join(users)] if users else []
    if rollback:
        parts.append("rollback target of %s: the previous spec uses it" % ", ".join(rollback))
    return "; ".join(parts)


def refusal_fix(kind, any_used, any_rollback):
    """The Fix: of a removal refused because services or rollback targets need the object."""
    fixes = []
    if any_used:
        fixes.append(
            "remove the %s from those services (docker service update --%s-rm NAME SERVICE) or remove the services"
            % (kind.name, kind.name)
        )
    if any_rollback:
        fixes.append(
            "update each service whose rollback target needs it once more, so its previous spec no longer names it "
            "(docker service update --force SERVICE; its tasks restart), or set force: true to remove it anyway "
            "(docker service rollback SERVICE then fails)"
        )
    return "; ".join(fixes)


# --------------------------------------------------------------------------- the module's run


class VersionedObjectManager:
    """Runs swarm_secret or swarm_config: kind is SECRET or CONFIG; client defaults to EngineClient(module)."""

    def __init__(self, module, kind, client=None):
        self.module = module
        self.params = module.params
        self.name = module.params["name"]
        self.kind = kind
        self.client = client or EngineClient(module)
        self.client.require_manager("%s %s: %s" % (kind.name, self.name, kind.module))

    # ----------------------------------------------------------------- engine access

    def _objects(self):
        api = self.client.api
        return self.client.call("listing %ss" % self.kind.name, getattr(api, "%ss" % self.kind.name)) or []

    def _services(self):
        return self.client.call("listing services", self.client.api.services) or []

    def _create(self, name, data, labels, replaced=None):
        """Create the object; returns its ID. `replaced` is the object removed just before to make way for it
        (versioned: false): a failure then says that the old one, and its value, are gone from the swarm."""
        doing = "creating %s %s" % (self.kind.name, name)
        path = "%s/create" % self.kind.path
        body = dict(Name=name, Labels=labels, Data=base64.b64encode(data).decode("ascii"))
        if replaced is None:
            text = self.client.post_json(doing, path, body)
        else:
            try:
                text = self.client.attempt(doing, self.client._post_json, path, body)
            except EngineError as exc:
                self.client.fail(self._lost_replacement(replaced, name, exc))
        try:
            return json.loads(text or "{}").get("ID")
        except ValueError:
            return None

    def _lost_replacement(self, replaced, name, exc):
        """The message of a create that failed after the object it replaces was removed."""
        kind = self.kind.name
        return (
            "%s %s: the old %s %s (ID %s) was removed to make way for the new value, and then %s. The old %s is gone "
            "and its value is not recoverable from the swarm%s.%s Fix: %s, then run this task again with the value "
            "(data or data_src): it creates %s %s."
            % (
                kind,
                self.name,
                kind,
                object_name(replaced),
                replaced.get("ID"),
                exc,
                kind,
                " (the engine never returns a secret's value)" if not self.kind.data_readable else "",
                ""
                if exc.answered
                else " The engine did not answer, so it may have created %s %s all the same: running again finds it "
                "or creates it." % (kind, name),
                "correct what the engine names" if exc.answered else "see why the engine did not answer",
                kind,
                name,
            )
        )

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

    def _stored_key(self):
        api = self.client.api
        for config in self.client.call("listing configs", api.configs) or []:
            if object_name(config) == KEY_CONFIG:
                data = config["Spec"].get("Data")
                if data is None:
                    data = self.client.call("reading the naming key", api.inspect_config, config["ID"])["Spec"]["Data"]
                return base64.b64decode(data)
        return None

    def _version_key(self):
        """The swarm's naming key, and whether this run creates it (check mode: would create it)."""
        key = self._stored_key()
        if key is not None:
            return key, False
        key = derive_key(self.client.join_tokens()["manager"])
        if self.module.check_mode:
            return key, True

        def create():
            try:
                self.client.api.create_config(KEY_CONFIG, key, labels=dict(KEY_LABELS))
            except APIError as exc:  # another manager created it first: use theirs
                if getattr(exc, "status_code", None) != 409 and "already exists" not in str(exc):
                    raise

        self.client.call("creating the naming key (config %s)" % KEY_CONFIG, create)
        return self._stored_key(), True

    # ----------------------------------------------------------------- run

    def run(self):
        try:
            check_name(self.name, self.params["versioned"], self.kind)
            if self.params["keep_versions"] < 0:
                raise SwarmDecisionError("keep_versions is %d. Fix: give 0 or more" % self.params["keep_versions"])
            objects = self._objects()
            services = self._services()
            if self.params["state"] == "absent":
                return self._absent(objects, services)
            return self._present(objects, services)
        except SwarmDecisionError as exc:
            self.client.fail("%s %s: %s" % (self.kind.name, self.name, exc))

    def _users_of_any(self, versions, services):
        users = set()
        for version in versions:
            users.update(services_using(services, version, self.kind))
        return sorted(users)

    def _versioned_target(self, objects, versions, data, digest):
        """(name, current version or None) of a versioned value. Legacy-named versions are never current."""
        target = version_name(self.name, digest)
        candidates = [v for v in versions if not legacy_named(v, self.name)]
        current = find_holder(candidates, data, digest, self.kind, prefer=target)
        clash = next((o for o in objects if object_name(o) == target), None)
        if current is None and clash is not None:
            raise SwarmDecisionError(
                "a %s named %s exists but is not the version of %s holding this value (its label %s is %s). Fix: "
                "remove it (%s rm %s) or choose another name"
                % (
                    self.kind.name,
                    target,
                    self.name,
                    NAME_LABEL,
                    object_labels(clash).get(NAME_LABEL),
                    self.kind.cli,
                    target,
                )
            )
        return (object_name(current) if current else target), current

    def _plain_target(self, objects, services, data, digest):
        """(current object or None, object to replace or None) of versioned=false: the object named exactly."""
        current = next((o for o in objects if object_name(o) == self.name), None)
        if current is None or holds(current, data, digest, self.kind):
            return current, None
        users, rollback = needed_by(services, current, self.kind)
        kind = self.kind.name
        if users:
            why = (
                "its value changed"
                if holds(current, data, digest, self.kind) is False
                else (
                    "it has no %s label, so its value cannot be compared (the engine never returns %s data)"
                    % (DIGEST_LABEL, kind)
                )
            )
            raise SwarmDecisionError(
                "%s, and a swarm %s cannot change in place while services use it: %s. Fix: set versioned: true "
                "to create a new version next to it and point the services at the name this module returns, "
                "or remove the %s from those services first" % (why, kind, ", ".join(users), kind)
            )
        if rollback and not self.params["force"]:
            raise SwarmDecisionError(
                "its value changed, and replacing it would remove what the rollback target of %s uses (their "
                "previous spec). Fix: %s; or set versioned: true"
                % (", ".join(rollback), refusal_fix(self.kind, False, True))
            )
        return None, current

    def _present(self, objects, services):
        name, kind = self.name, self.kind
        data = resolve_data(self.params.get("data"), self.params.get("data_src"), self.params.get("data_is_b64"))
        check_size(data, kind)
        key, key_created = self._version_key()
        digest = version_digest(key, kind, name, data)
        versions = versions_of(objects, name)

        replace = None
        if self.params["versioned"]:
            target, current = self._versioned_target(objects, versions, data, digest)
        else:
            current, replace = self._plain_target(objects, services, data, digest)
            target = name
        if key_created and current is None and any(object_digest(v) for v in versions):
            # Made again from an unchanged join token, the key is the lost one: a version holding the value is
            # found (current), and nothing needs saying. Else either the value changed or the key did.
            self._warn(
                "the naming key (config %s) was missing and %s again from the manager join token; %s has keyed "
                "versions but none holds this value under that key: either the value changed, or the join token was "
                "rotated since the lost key was made and %s moves to a new version though its value did not change"
                % (KEY_CONFIG, "would be made" if self.module.check_mode else "was made", name, name)
            )
        # Before the run, services were meant to use the object holding this value, else the one
        # replaced, else the newest version.
        shown = current or replace or (versions[0] if versions else None)
        before = dict(
            name=object_name(shown),
            hmac=object_digest(shown),
            labels=shown_labels(object_labels(shown)),
            versions=version_rows(versions),
        )

        keep_labels = self.params.get("labels")
        if keep_labels is None:
            keep_labels = object_labels(current) if current is not None else {}
        labels = wanted_labels(name, digest, keep_labels)

        changed = key_created
        object_id = current.get("ID") if current is not None else None
        if current is None:
            changed = True
            if not self.module.check_mode:
                if replace is not None:
                    self._remove(replace)
                object_id = self._create(target, data, labels, replaced=replace)
        elif object_labels(current) != labels:
            changed = True
            if not self.module.check_mode:
                self._update_labels(current, labels)

        others = [v for v in versions if object_name(v) != target]
        pruned = choose_prune(
            [target] + [object_name(v) for v in others],
            self.params["keep_versions"],
            needed={object_name(v) for v in others if any(needed_by(services, v, kind))},
            legacy={object_name(v) for v in others if legacy_named(v, name)},
        )
        for version in others:
            if object_name(version) in pruned:
                changed = True
                if not self.module.check_mode:
                    self._remove(version)

        remaining = [v for v in others if object_name(v) not in pruned]
        after_rows = [dict(name=target, hmac=digest)] + version_rows(remaining)
        return dict(
            changed=changed,
            name=target,
            id=object_id,
            hmac=digest,
            versions=[row["name"] for row in after_rows],
            pruned=pruned,
            services=self._users_of_any(versions, services),
            diff=dict(before=before, after=dict(name=target, hmac=digest, labels=labels, versions=after_rows)),
        )

    def _warn(self, message):
        warn = getattr(self.module, "warn", None)
        if warn:
            warn("%s %s: %s" % (self.kind.name, self.name, message))

    def _absent(self, objects, services):
        name, kind = self.name, self.kind
        versions = versions_of(objects, name)
        removed, kept = [], []
        for version in versions:
            users, rollback = needed_by(services, version, kind)
            if users or (rollback and not self.params["force"]):
                kept.append((version, users, rollback))
                continue
            if not self.module.check_mode:
                self._remove(version)
            removed.append(object_name(version))
        result = dict(
            changed=bool(removed),
            versions=[object_name(entry[0]) for entry in kept],
            pruned=removed,
            services=self._users_of_any(versions, services),
            diff=dict(
                before=dict(versions=version_rows(versions)),
                after=dict(versions=version_rows([entry[0] for entry in kept])),
            ),
        )
        if kept:
            result.pop("diff")
            self.client.fail(self._refusal(kept, removed), **result)
        return result

    def _refusal(self, kept, removed):
        """The message of a removal refused because services, or their rollback targets, need versions."""
        return "%s %s: %s still needed, so not removed: %s. Fix: %s, then run again%s." % (
            self.kind.name,
            self.name,
            "this version is" if len(kept) == 1 else "these versions are",
            "; ".join("%s (%s)" % (object_name(v), need_text(u, r)) for v, u, r in kept),
            refusal_fix(self.kind, any(entry[1] for entry in kept), any(entry[2] and not entry[1] for entry in kept)),
            " (the unused versions %s %s removed)"
            % (", ".join(removed), "would be" if self.module.check_mode else "were")
            if removed
            else "",
        )
