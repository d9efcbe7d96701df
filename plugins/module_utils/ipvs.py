# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's IPVS table over generic netlink, with Python's standard library only.

Why netlink and not ipvsadm: one socket reads the whole table (with each real server's active and
inactive connections, which `ipvsadm -S` does not print) and applies a whole batch of changes with one
acknowledgement per change, so an error names the exact rule; no process is spawned per rule or per run;
nothing is needed on the target but Python (Debian 12's python3-pyroute2 0.7.2 has no IPVS support,
and targets get nothing from PyPI). ipvsadm stays useful to operators: `render_rules` prints the table
in its restore syntax (`ipvsadm -S -n`).

Three parts:
- the netlink codec (messages and attributes) and IpvsKernel, the client on one socket;
- the table model: services and real servers as plain dicts, keys, and the restore-syntax rendering;
- nothing here decides what to change: that is the ipvs module's job.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

from ansible_collections.swarmplane.cluster.plugins.module_utils.netns import entered

# --------------------------------------------------------------------------- netlink constants

NETLINK_GENERIC = 16
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

IPVS_GENL_NAME = "IPVS"
IPVS_GENL_VERSION = 1

CMD_NEW_SERVICE = 1
CMD_SET_SERVICE = 2
CMD_DEL_SERVICE = 3
CMD_GET_SERVICE = 4
CMD_NEW_DEST = 5
CMD_SET_DEST = 6
CMD_DEL_DEST = 7
CMD_GET_DEST = 8

CMD_ATTR_SERVICE = 1
CMD_ATTR_DEST = 2

SVC_ATTR_AF = 1
SVC_ATTR_PROTOCOL = 2
SVC_ATTR_ADDR = 3
SVC_ATTR_PORT = 4
SVC_ATTR_FWMARK = 5
SVC_ATTR_SCHED_NAME = 6
SVC_ATTR_FLAGS = 7
SVC_ATTR_TIMEOUT = 8
SVC_ATTR_NETMASK = 9
SVC_ATTR_STATS = 10
SVC_ATTR_STATS64 = 12

DEST_ATTR_ADDR = 1
DEST_ATTR_PORT = 2
DEST_ATTR_FWD_METHOD = 3
DEST_ATTR_WEIGHT = 4
DEST_ATTR_U_THRESH = 5
DEST_ATTR_L_THRESH = 6
DEST_ATTR_ACTIVE_CONNS = 7
DEST_ATTR_INACT_CONNS = 8
DEST_ATTR_PERSIST_CONNS = 9
DEST_ATTR_STATS = 10
DEST_ATTR_ADDR_FAMILY = 11
DEST_ATTR_STATS64 = 12

STATS_ATTR_NAMES = {1: "connections", 2: "packets_in", 3: "packets_out", 4: "bytes_in", 5: "bytes_out"}

# Service flags: persistence, and the schedulers' own flags (ipvsadm -b sh-fallback,sh-port / mh-...).
SVC_F_PERSISTENT = 0x1
SVC_F_HASHED = 0x2
SVC_F_SCHED1 = 0x8
SVC_F_SCHED2 = 0x10
SCHEDULER_FLAGS = {
    "sh-fallback": SVC_F_SCHED1,
    "sh-port": SVC_F_SCHED2,
    "mh-fallback": SVC_F_SCHED1,
    "mh-port": SVC_F_SCHED2,
}
MANAGED_SVC_FLAGS = SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2

FWD_MASK = 0x7
FORWARDING = {"nat": 0, "local": 1, "tunnel": 2, "dr": 3}
FORWARDING_NAMES = {v: k for k, v in FORWARDING.items()}
# Flags ipvsadm prints for each method in its restore syntax.
FORWARDING_FLAGS = {"nat": "-m", "local": "-m", "tunnel": "-i", "dr": "-g"}

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
PROTOCOL_FLAGS = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
FAMILY_NAMES = {v: k for k, v in FAMILIES.items()}

# Schedulers of the mainline kernel (ip_vs_<name>.ko).
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos")

# Requests sent before their acknowledgements are read: each ack costs the socket's receive buffer
# about a page, so a long batch sent at once would overflow it and lose acks.
BATCH = 64


class IpvsError(Exception):
    """A netlink request failed; errno is the kernel's answer."""

    def __init__(self, msg, errno_=0):
        super().__init__(msg)
        self.errno = errno_


class IpvsUnavailable(Exception):
    """The kernel has no IPVS (the ip_vs module is neither loaded nor built in)."""


# --------------------------------------------------------------------------- attribute codec


def _pad(length):
    return (length + 3) & ~3


def attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (_pad(length) - length)


def nested(kind, *attrs):
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def attr_u16(kind, value):
    return attr(kind, struct.pack("=H", value))


def attr_u32(kind, value):
    return attr(kind, struct.pack("=I", value))


def attr_be16(kind, value):
    return attr(kind, struct.pack("!H", value))


def attr_str(kind, value):
    return attr(kind, value.encode() + b"\0")


def parse_attrs(data):
    """{type: payload} of a run of attributes (nested ones stay bytes for the caller to parse)."""
    attrs = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        attrs[kind & NLA_TYPE_MASK] = data[offset + 4 : offset + length]
        offset += _pad(length)
    return attrs


def u16(payload):
    return struct.unpack("=H", payload[:2])[0]


def u32(payload):
    return struct.unpack("=I", payload[:4])[0]


def u64(payload):
    return struct.unpack("=Q", payload[:8])[0]


def be16(payload):
    return struct.unpack("!H", payload[:2])[0]


# --------------------------------------------------------------------------- addresses


def family_of(address):
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def pack_addr(af, address):
    """union nf_inet_addr: 16 bytes, an IPv4 address in the first four."""
    return socket.inet_pton(af, address).ljust(16, b"\0")


def unpack_addr(af, payload):
    size = 16 if af == socket.AF_INET6 else 4
    return str(ipaddress.ip_address(payload[:size]))


def pack_netmask(af, netmask):
    """IPv4: the mask's four bytes in network order (as ipvsadm -M sends them); IPv6: the prefix length."""
    if af == socket.AF_INET6:
        return struct.pack("=I", int(netmask))
    return socket.inet_aton(netmask)


def unpack_netmask(af, payload):
    if af == socket.AF_INET6:
        return str(u32(payload))
    return socket.inet_ntoa(payload[:4])


def default_netmask(af):
    return "128" if af == socket.AF_INET6 else "255.255.255.255"


# --------------------------------------------------------------------------- the table model
#
# A service: {"family", "protocol", "address", "port", "fwmark", "scheduler", "scheduler_flags",
#             "persistence_timeout", "persistence_netmask", "flags", "real_servers": [...]}
# where fwmark services have protocol/address/port None and address services fwmark None; "flags" keeps
# the kernel's own flag bits this code does not manage (one-packet scheduling), to send them back unchanged.
# A real server: {"address", "port", "forwarding", "weight", "u_threshold", "l_threshold"} plus, as read
# from the kernel, "active_connections", "inactive_connections", "persistent_connections".


def service_key(service):
    """A service's identity, readable: 'tcp 10.0.0.1:80', 'udp [fd00::1]:53', 'fwmark 256' ('fwmark 256 ipv6')."""
    if service.get("fwmark"):
        suffix = " ipv6" if service.get("family") == "ipv6" else ""
        return "fwmark %d%s" % (service["fwmark"], suffix)
    return "%s %s" % (service["protocol"], endpoint(service["address"], service["port"]))


def endpoint(address, port):
    host = "[%s]" % address if ":" in address else address
    return "%s:%d" % (host, port or 0)


def real_server_key(real_server):
    return endpoint(real_server["address"], real_server["port"])


def service_selector(service):
    """ipvsadm's way of naming a service: '-t 10.0.0.1:80', '-f 256'."""
    if service.get("fwmark"):
        return "-f %d%s" % (service["fwmark"], " -6" if service.get("family") == "ipv6" else "")
    return "%s %s" % (PROTOCOL_FLAGS[service["protocol"]], endpoint(service["address"], service["port"]))


def render_service(service):
    words = ["-A", service_selector(service), "-s", service["scheduler"]]
    if service.get("scheduler_flags"):
        words += ["-b", ",".join(service["scheduler_flags"])]
    if service.get("persistence_timeout"):
        words += ["-p", str(service["persistence_timeout"])]
        family = FAMILIES[service.get("family") or "ipv4"]
        if service.get("persistence_netmask") and service["persistence_netmask"] != default_netmask(family):
            words += ["-M", service["persistence_netmask"]]
    return " ".join(words)


def render_real_server(service, real_server):
    words = ["-a", service_selector(service), "-r", real_server_key(real_server)]
    words += [FORWARDING_FLAGS[real_server["forwarding"]], "-w", str(real_server["weight"])]
    if real_server.get("u_threshold"):
        words += ["-x", str(real_server["u_threshold"])]
    if real_server.get("l_threshold"):
        words += ["-y", str(real_server["l_threshold"])]
    return " ".join(words)


def render_rules(services):
    """The table in ipvsadm's restore syntax (`ipvsadm -S -n`), services and real servers sorted."""
    lines = []
    for service in sorted(services, key=service_key):
        lines.append(render_service(service))
        for real_server in sorted(service.get("real_servers") or [], key=real_server_key):
            lines.append(render_real_server(service, real_server))
    return lines


# --------------------------------------------------------------------------- decoding kernel answers


def decode_flags(payload):
    """(flags, mask) of struct ip_vs_flags."""
    return struct.unpack("=II", payload[:8])


def decode_stats(payload):
    attrs = parse_attrs(payload)
    return {
        name: (u64(attrs[kind]) if len(attrs[kind]) >= 8 else u32(attrs[kind]))
        for kind, name in STATS_ATTR_NAMES.items()
        if kind in attrs
    }


def decode_service(payload, stats=False):
    attrs = parse_attrs(payload)
    af = u16(attrs[SVC_ATTR_AF])
    flags = decode_flags(attrs[SVC_ATTR_FLAGS])[0] if SVC_ATTR_FLAGS in attrs else 0
    fwmark = u32(attrs[SVC_ATTR_FWMARK]) if SVC_ATTR_FWMARK in attrs else 0
    scheduler = attrs[SVC_ATTR_SCHED_NAME].rstrip(b"\0").decode() if SVC_ATTR_SCHED_NAME in attrs else ""
    service = dict(
        family=FAMILY_NAMES.get(af, str(af)),
        protocol=None,
        address=None,
        port=None,
        fwmark=fwmark or None,
        scheduler=scheduler,
        scheduler_flags=scheduler_flag_names(scheduler, flags),
        persistence_timeout=u32(attrs[SVC_ATTR_TIMEOUT]) if flags & SVC_F_PERSISTENT else 0,
        persistence_netmask=unpack_netmask(af, attrs[SVC_ATTR_NETMASK])
        if SVC_ATTR_NETMASK in attrs
        else default_netmask(af),
        flags=flags & ~(MANAGED_SVC_FLAGS | SVC_F_HASHED),
        real_servers=[],
    )
    if not fwmark:
        protocol = u16(attrs[SVC_ATTR_PROTOCOL])
        service.update(
            protocol=PROTOCOL_NAMES.get(protocol, str(protocol)),
            address=unpack_addr(af, attrs[SVC_ATTR_ADDR]),
            port=be16(attrs[SVC_ATTR_PORT]),
        )
    counters = SVC_ATTR_STATS64 if SVC_ATTR_STATS64 in attrs else SVC_ATTR_STATS
    if stats and counters in attrs:
        service["stats"] = decode_stats(attrs[counters])
    return service


def scheduler_flag_names(scheduler, flags):
    prefix = scheduler + "-"
    return [name for name, bit in SCHEDULER_FLAGS.items() if name.startswith(prefix) and flags & bit]


def decode_real_server(payload, service_af, stats=False):
    attrs = parse_attrs(payload)
    af = u16(attrs[DEST_ATTR_ADDR_FAMILY]) if DEST_ATTR_ADDR_FAMILY in attrs else service_af
    method = u32(attrs[DEST_ATTR_FWD_METHOD]) & FWD_MASK
    real_server = dict(
        address=unpack_addr(af, attrs[DEST_ATTR_ADDR]),
        port=be16(attrs[DEST_ATTR_PORT]),
        forwarding=FORWARDING_NAMES.get(method, str(method)),
        weight=u32(attrs[DEST_ATTR_WEIGHT]),
        u_threshold=u32(attrs[DEST_ATTR_U_THRESH]) if DEST_ATTR_U_THRESH in attrs else 0,
        l_threshold=u32(attrs[DEST_ATTR_L_THRESH]) if DEST_ATTR_L_THRESH in attrs else 0,
        active_connections=u32(attrs[DEST_ATTR_ACTIVE_CONNS]) if DEST_ATTR_ACTIVE_CONNS in attrs else 0,
        inactive_connections=u32(attrs[DEST_ATTR_INACT_CONNS]) if DEST_ATTR_INACT_CONNS in attrs else 0,
        persistent_connections=u32(attrs[DEST_ATTR_PERSIST_CONNS]) if DEST_ATTR_PERSIST_CONNS in attrs else 0,
    )
    counters = DEST_ATTR_STATS64 if DEST_ATTR_STATS64 in attrs else DEST_ATTR_STATS
    if stats and counters in attrs:
        real_server["stats"] = decode_stats(attrs[counters])
    return real_server


# --------------------------------------------------------------------------- encoding requests


def service_identity(service):
    af = FAMILIES[service.get("family") or "ipv4"]
    attrs = [attr_u16(SVC_ATTR_AF, af)]
    if service.get("fwmark"):
        attrs.append(attr_u32(SVC_ATTR_FWMARK, service["fwmark"]))
    else:
        attrs += [
            attr_u16(SVC_ATTR_PROTOCOL, PROTOCOLS[service["protocol"]]),
            attr(SVC_ATTR_ADDR, pack_addr(af, service["address"])),
            attr_be16(SVC_ATTR_PORT, service["port"]),
        ]
    return attrs


def service_flags(service):
    flags = service.get("flags") or 0
    if service.get("persistence_timeout"):
        flags |= SVC_F_PERSISTENT
    for name in service.get("scheduler_flags") or []:
        flags |= SCHEDULER_FLAGS[name]
    return flags


def encode_service(service, full=True):
    attrs = service_identity(service)
    if full:
        af = FAMILIES[service.get("family") or "ipv4"]
        flags = service_flags(service)
        attrs += [
            attr_str(SVC_ATTR_SCHED_NAME, service["scheduler"]),
            # The mask says which bits this request sets: all but the kernel's own "hashed" bit.
            attr(SVC_ATTR_FLAGS, struct.pack("=II", flags, 0xFFFFFFFF & ~SVC_F_HASHED)),
            attr_u32(SVC_ATTR_TIMEOUT, service.get("persistence_timeout") or 0),
            attr(SVC_ATTR_NETMASK, pack_netmask(af, service.get("persistence_netmask") or default_netmask(af))),
        ]
    return nested(CMD_ATTR_SERVICE, *attrs)


def encode_real_server(real_server, full=True):
    af = family_of(real_server["address"])
    attrs = [
        attr(DEST_ATTR_ADDR, pack_addr(af, real_server["address"])),
        attr_be16(DEST_ATTR_PORT, real_server["port"] or 0),
        attr_u16(DEST_ATTR_ADDR_FAMILY, af),
    ]
    if full:
        attrs += [
            attr_u32(DEST_ATTR_FWD_METHOD, FORWARDING[real_server["forwarding"]]),
            attr_u32(DEST_ATTR_WEIGHT, real_server["weight"]),
            attr_u32(DEST_ATTR_U_THRESH, real_server.get("u_threshold") or 0),
            attr_u32(DEST_ATTR_L_THRESH, real_server.get("l_threshold") or 0),
        ]
    return nested(CMD_ATTR_DEST, *attrs)


def operation_payload(op):
    """The attributes of one change: op is (command, service, real_server or None)."""
    command, service, real_server = op
    if command in (CMD_NEW_SERVICE, CMD_SET_SERVICE):
        return encode_service(service)
    if command == CMD_DEL_SERVICE:
        return encode_service(service, full=False)
    return encode_service(service, full=False) + encode_real_server(real_server, full=command != CMD_DEL_DEST)


# --------------------------------------------------------------------------- the client


class IpvsKernel:
    """One generic netlink socket on the IPVS family, opened in the host's or a named network namespace."""

    def __init__(self, netns=None):
        with entered(netns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        try:
            # Room for a batch's acknowledgements and for large dumps (root may exceed rmem_max).
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        # Acknowledgements carry only the error code, not a copy of the request.
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 0
        self.family = self._resolve_family()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------- transport

    def _message(self, family, command, flags, payload, version=IPVS_GENL_VERSION):
        self.seq += 1
        body = struct.pack("=BBH", command, version, 0) + payload
        return self.seq, struct.pack("=IHHII", 16 + len(body), family, flags, self.seq, 0) + body

    def _messages(self):
        """Yield (type, flags, seq, payload) of every message of one datagram."""
        data = self.sock.recv(1 << 20)
        offset = 0
        while offset + 16 <= len(data):
            length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
            if length < 16:
                break
            yield kind, flags, seq, data[offset + 16 : offset + length]
            offset += _pad(length)

    def _request(self, family, command, payload, dump=False, version=IPVS_GENL_VERSION):
        """Send one request; return the attribute runs of its answers (one per message of a dump)."""
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        seq, message = self._message(family, command, flags, payload, version)
        self.sock.send(message)
        answers = []
        while True:
            for kind, msg_flags, msg_seq, body in self._messages():
                if msg_seq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return answers
                if kind == NLMSG_ERROR:
                    code = -struct.unpack("=i", body[:4])[0]
                    if code:
                        raise IpvsError(os.strerror(code), code)
                    return answers
                answers.append(body[4:])  # past the genetlink header
                if not dump and not msg_flags & NLM_F_MULTI:
                    return answers

    def _resolve_family(self):
        try:
            answers = self._request(
                GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr_str(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME), version=1
            )
        except IpvsError as exc:
            if exc.errno == errno.ENOENT:
                raise IpvsUnavailable("the kernel has no IPVS: the ip_vs module is not loaded") from None
            raise
        return u16(parse_attrs(answers[0])[CTRL_ATTR_FAMILY_ID])

    # ----------------------------------------------------------------- reading

    def services(self, real_servers=True, stats=False):
        """The whole table: every service with its real servers (one dump per service); counters when asked."""
        services = [
            decode_service(parse_attrs(body)[CMD_ATTR_SERVICE], stats)
            for body in self._request(self.family, CMD_GET_SERVICE, b"", dump=True)
        ]
        if real_servers:
            for service in services:
                service["real_servers"] = self.real_servers(service, stats)
        return services

    def real_servers(self, service, stats=False):
        af = FAMILIES.get(service.get("family") or "ipv4", socket.AF_INET)
        bodies = self._request(self.family, CMD_GET_DEST, encode_service(service, full=False), dump=True)
        return [decode_real_server(parse_attrs(body)[CMD_ATTR_DEST], af, stats) for body in bodies]

    # ----------------------------------------------------------------- writing

    def apply(self, operations):
        """Apply (command, service, real_server) changes in order, BATCH requests per send.

        Every change is attempted; returns [(operation, errno)] of those the kernel refused.
        """
        failures = []
        for start in range(0, len(operations), BATCH):
            chunk = operations[start : start + BATCH]
            pending = {}
            datagram = b""
            for op in chunk:
                seq, message = self._message(self.family, op[0], NLM_F_REQUEST | NLM_F_ACK, operation_payload(op))
                pending[seq] = op
                datagram += message
            self.sock.send(datagram)
            while pending:
                for kind, _flags, seq, body in self._messages():
                    if kind != NLMSG_ERROR or seq not in pending:
                        continue
                    code = -struct.unpack("=i", body[:4])[0]
                    op = pending.pop(seq)
                    if code:
                        failures.append((op, code))
        return failures
