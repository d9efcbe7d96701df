"""Parsing of the host facts swarm_info reads in the preflight round trip."""

from ansible_collections.swarmplane.cluster.plugins.modules.swarm_info import (
    missing_packages,
    parse_default_route,
    parse_ip_addr,
    parse_os_release,
)

IP_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0    inet 172.18.0.3/16 brd 172.18.255.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 172.18.0.9/16 scope global secondary eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::42:acff:fe12:3/64 scope link \\       valid_lft forever preferred_lft forever
3: ens4@if7    inet 10.20.0.4/24 brd 10.20.0.255 scope global ens4\\       valid_lft forever preferred_lft forever
3: ens4@if7    inet6 fd00::4/64 scope global \\       valid_lft forever preferred_lft forever
"""


def test_addresses_per_interface_without_loopback_or_link_local():
    interfaces, ipv4, ipv6 = parse_ip_addr(IP_ADDR)
    assert interfaces == ["lo", "eth0", "ens4"]
    assert ipv4 == {"eth0": ["172.18.0.3", "172.18.0.9"], "ens4": ["10.20.0.4"]}
    assert ipv6 == ["fd00::4"]


def test_default_route_interface():
    assert parse_default_route("default via 172.18.0.1 dev eth0 \n") == "eth0"
    assert parse_default_route("default via 10.0.0.1 dev ens4 proto dhcp metric 100\n") == "ens4"
    assert parse_default_route("") is None


def test_debian_and_ubuntu_are_the_debian_family():
    debian = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'
    ubuntu = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n'
    rocky = 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
    assert parse_os_release(debian) == {"os_family": "Debian", "distribution": "Debian GNU/Linux"}
    assert parse_os_release(ubuntu) == {"os_family": "Debian", "distribution": "Ubuntu"}
    assert parse_os_release(rocky) == {"os_family": "rocky", "distribution": "Rocky Linux"}


DPKG_STATUS = """Package: docker.io
Status: install ok installed
Priority: optional
Description: Linux container runtime
 Status: not a field, a description line

Package: python3-docker
Status: deinstall ok config-files
Version: 5.0.3-1

Package: containerd
Status: install ok half-configured

Package: runc
Status: install ok installed
"""


def test_missing_packages_are_those_dpkg_does_not_list_as_installed():
    wanted = ["docker.io", "python3-docker", "containerd", "runc", "apparmor"]
    # Removed with its configuration kept, half-configured, or never there: apt has something to do for each.
    assert missing_packages(wanted, DPKG_STATUS) == ["python3-docker", "containerd", "apparmor"]


def test_without_a_dpkg_status_every_package_counts_as_missing():
    assert missing_packages(["docker.io", "runc"], "") == ["docker.io", "runc"]
