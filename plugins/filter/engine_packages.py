# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the docker_engine role's package upgrades: which engine packages a host has a newer version of, read
from `apt-cache policy` and compared as dpkg compares versions. Pure functions of command output."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: engine_packages
short_description: Which engine packages of a host have a newer version (apt-cache policy, dpkg version order)
description:
  - C(engine_package_upgrades) reads the output of C(LC_ALL=C apt-cache policy PKG...) and returns, for the packages
    asked about that are installed and whose candidate version is newer than the installed one, C(installed) and
    C(candidate). A package that is not installed, has no candidate, or whose candidate is not newer (the same, or
    older under a pin) is left out.
  - C(engine_package_policy) returns what C(apt-cache policy) says of every package it lists (installed, candidate).
  - C(debian_version_compare) compares two Debian versions as C(dpkg --compare-versions) does (-1, 0, 1).
"""

NONE = "(none)"


def _order(char):
    """dpkg's weight of one character of a non-digit run: ~ sorts before everything, even the end of the string;
    letters before other characters."""
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a, b):
    """dpkg's comparison of two upstream versions or revisions (lib/dpkg/version.c, verrevcmp)."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(version):
    """(epoch, upstream, revision) of a Debian version; the revision is '' when the version has no '-'."""
    version = str(version).strip()
    epoch, sep, rest = version.partition(":")
    if not sep:
        epoch, rest = "0", version
    elif not epoch.isdigit():
        raise ValueError("%r is not a Debian version (the epoch must be a number)" % version)
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch), upstream, revision


def debian_version_compare(a, b):
    """-1, 0 or 1 as Debian version a sorts before, like or after b (`dpkg --compare-versions`)."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    result = (ea > eb) - (ea < eb) or _verrevcmp(ua, ub) or _verrevcmp(ra, rb)
    return (result > 0) - (result < 0)


PACKAGE_LINE = re.compile(r"^(\S+?):(?:\S+:)?\s*$")
FIELD_LINE = re.compile(r"^\s+(Installed|Candidate):\s*(\S+)\s*$")


def engine_package_policy(text):
    """{package: dict(installed, candidate)} of `LC_ALL=C apt-cache policy` output; '(none)' becomes None. A
    multiarch name (`pkg:amd64:`) is listed under the bare package name."""
    policy = {}
    current = None
    for line in str(text or "").splitlines():
        header = PACKAGE_LINE.match(line)
        if header:
            current = policy.setdefault(header.group(1).split(":", 1)[0], dict(installed=None, candidate=None))
            continue
        field = FIELD_LINE.match(line)
        if field and current is not None:
            value = None if field.group(2) == NONE else field.group(2)
            current[field.group(1).lower()] = value
    return policy


def engine_package_upgrades(text, packages):
    """{package: dict(installed, candidate)} for each of `packages` that is installed and has a newer candidate."""
    policy = engine_package_policy(text)
    upgrades = {}
    for package in packages or []:
        found = policy.get(package) or {}
        installed, candidate = found.get("installed"), found.get("candidate")
        if installed and candidate and debian_version_compare(candidate, installed) > 0:
            upgrades[package] = dict(installed=installed, candidate=candidate)
    return upgrades


class FilterModule:
    def filters(self):
        return {
            "engine_package_upgrades": engine_package_upgrades,
            "engine_package_policy": engine_package_policy,
            "debian_version_compare": debian_version_compare,
        }
