"""Record the kernel's raw netlink answers for the IPVS table, as tests/unit/test_ipvs.py reads them.

Run on a host with IPVS (as root), with the collection's module_utils next to it:
    python3 record.py [NETNS] > table.json
Every service's GET_SERVICE answer and every real server's GET_DEST answer are kept as hex, so the unit
tests decode exactly what a kernel sent.
"""

import json
import sys

from ipvs import (
    CMD_ATTR_SERVICE,
    CMD_GET_DEST,
    CMD_GET_SERVICE,
    IpvsKernel,
    decode_service,
    encode_service,
    parse_attrs,
)
from netns import netns_path

kernel = IpvsKernel(netns_path(sys.argv[1]) if len(sys.argv) > 1 else None)
with open("/proc/sys/kernel/osrelease") as handle:
    record = {"kernel": handle.read().strip(), "services": []}
for body in kernel._request(kernel.family, CMD_GET_SERVICE, b"", dump=True):
    service = decode_service(parse_attrs(body)[CMD_ATTR_SERVICE])
    dests = kernel._request(kernel.family, CMD_GET_DEST, encode_service(service, full=False), dump=True)
    record["services"].append({"service": body.hex(), "dests": [d.hex() for d in dests]})
json.dump(record, sys.stdout, indent=1)
print()
