#!/usr/bin/env python3
"""Print the failed tests of JUnit XML reports, last lines of each failure, so that a CI log's tail names them.

Molecule prints its destroy step and recap after the verifier's pytest summary, and CI keeps the tail of the log:
this runs after a failed `make molecule` or `make integration` and repeats what failed at the very end.
"""

import sys
import xml.etree.ElementTree as ET

LINES_PER_FAILURE = 25


def failures(report_path):
    try:
        root = ET.parse(report_path).getroot()
    except (OSError, ET.ParseError) as error:
        yield report_path, "report not readable: %s" % error
        return
    for case in root.iter("testcase"):
        for outcome in ("failure", "error"):
            found = case.find(outcome)
            if found is not None:
                name = "%s::%s" % (case.get("classname", ""), case.get("name", ""))
                text = (found.text or found.get("message") or "").rstrip()
                yield name, "\n".join(text.splitlines()[-LINES_PER_FAILURE:])


def main(paths):
    found = 0
    for path in paths:
        for name, text in failures(path):
            found += 1
            print("\n==== FAILED %s (%s)\n%s" % (name, path, text))
    if not found:
        print("No failed test in %s: the failure was outside the tests (see above)." % (" ".join(paths) or "no report"))


if __name__ == "__main__":
    main(sys.argv[1:])
