"""plugins/filter/engine_packages.py: which engine packages have a newer version, from apt-cache policy."""

from __future__ import annotations

import pytest

from ansible_collections.swarmplane.cluster.plugins.filter.engine_packages import (
    debian_version_compare,
    engine_package_policy,
    engine_package_upgrades,
)

# What `LC_ALL=C apt-cache policy docker.io containerd runc python3-docker` prints on a lab host (Debian 12): every
# package at its candidate.
CURRENT = """\
docker.io:
  Installed: 20.10.24+dfsg1-1+deb12u1+b6
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
 *** 20.10.24+dfsg1-1+deb12u1+b6 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
containerd:
  Installed: 1.6.20~ds1-1+b1
  Candidate: 1.6.20~ds1-1+b1
  Version table:
 *** 1.6.20~ds1-1+b1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
runc:
  Installed: 1.1.5+ds1-1+deb12u1
  Candidate: 1.1.5+ds1-1+deb12u1
  Version table:
 *** 1.1.5+ds1-1+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
"""

# After a point release: security updates for docker.io and runc; containerd pinned back to an older version;
# podman not installed.
NEWER = """\
docker.io:
  Installed: 20.10.24+dfsg1-1+deb12u1+b6
  Candidate: 20.10.24+dfsg1-1+deb12u2
  Version table:
     20.10.24+dfsg1-1+deb12u2 500
        500 http://security.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 20.10.24+dfsg1-1+deb12u1+b6 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
containerd:
  Installed: 1.6.20~ds1-1+b1
  Candidate: 1.6.20~ds1-1
  Version table:
 *** 1.6.20~ds1-1+b1 100
        100 /var/lib/dpkg/status
     1.6.20~ds1-1 1001
        1001 http://deb.debian.org/debian bookworm/main amd64 Packages
runc:
  Installed: 1.1.5+ds1-1+deb12u1
  Candidate: 1:1.0.0
  Version table:
     1:1.0.0 500
        500 http://example.org/debian bookworm/main amd64 Packages
 *** 1.1.5+ds1-1+deb12u1 100
        100 /var/lib/dpkg/status
podman:
  Installed: (none)
  Candidate: 4.3.1+ds1-8+deb12u1
  Version table:
     4.3.1+ds1-8+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

ENGINE = ["docker.io", "containerd", "runc", "podman", "not-known"]


def test_nothing_newer_is_no_upgrade():
    assert engine_package_upgrades(CURRENT, ENGINE) == {}


def test_only_installed_packages_with_a_newer_candidate_are_upgraded():
    assert engine_package_upgrades(NEWER, ENGINE) == {
        "docker.io": dict(installed="20.10.24+dfsg1-1+deb12u1+b6", candidate="20.10.24+dfsg1-1+deb12u2"),
        "runc": dict(installed="1.1.5+ds1-1+deb12u1", candidate="1:1.0.0"),  # a higher epoch wins
    }


def test_only_the_packages_asked_about_count():
    assert list(engine_package_upgrades(NEWER, ["runc"])) == ["runc"]
    assert engine_package_upgrades(NEWER, []) == {}
    assert engine_package_upgrades("", ENGINE) == {}


def test_the_policy_of_each_listed_package():
    policy = engine_package_policy(NEWER)
    assert policy["podman"] == dict(installed=None, candidate="4.3.1+ds1-8+deb12u1")
    assert sorted(policy) == ["containerd", "docker.io", "podman", "runc"]


def test_a_multiarch_name_and_no_candidate():
    text = "libc6:i386:\n  Installed: 2.36-9\n  Candidate: (none)\n  Version table:\n *** 2.36-9 100\n"
    assert engine_package_policy(text) == {"libc6": dict(installed="2.36-9", candidate=None)}
    assert engine_package_upgrades(text, ["libc6"]) == {}


@pytest.mark.parametrize(
    "a, b, result",
    [
        ("1.0", "1.0", 0),
        ("1.0-1", "1.0-1", 0),
        ("1.0", "1.0-0", 0),  # no revision sorts like revision 0
        ("1.0", "1.1", -1),
        ("1.10", "1.9", 1),  # numbers compare as numbers
        ("1.01", "1.1", 0),  # leading zeros do not count
        ("1.0~rc1", "1.0", -1),  # ~ sorts before the end
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~~", "1.0~", -1),
        ("1.0a", "1.0", 1),
        ("1.0a", "1.0+", -1),  # letters before other characters
        ("1.0+b1", "1.0", 1),  # binNMU
        ("20.10.24+dfsg1-1+deb12u2", "20.10.24+dfsg1-1+deb12u1+b6", 1),
        ("1.6.20~ds1-1", "1.6.20~ds1-1+b1", -1),
        ("1:1.0", "2.0", 1),  # epoch first
        ("0:2.0", "2.0", 0),
        ("2.0-1", "2.0-1ubuntu1", -1),
        ("2.0-10", "2.0-9", 1),
    ],
)
def test_debian_versions_compare_as_dpkg_does(a, b, result):
    assert debian_version_compare(a, b) == result
    assert debian_version_compare(b, a) == -result


def test_a_version_with_a_bad_epoch_is_an_error():
    with pytest.raises(ValueError, match="the epoch must be a number"):
        debian_version_compare("x:1.0", "1.0")
