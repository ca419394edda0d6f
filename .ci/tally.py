"""Adds up the JUnit XML reports of the CI's pytest runs into one closing line.

CI ends with schemathesis, whose own closing line counts no pytest tests; this line says what ran.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(paths: list[str]) -> int:
    if not paths:
        print("tally: no JUnit reports given", file=sys.stderr)
        return 2
    tests = failed = skipped = 0
    for path in paths:
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest run wrote it
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            tests += int(suite.get("tests", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    passed = tests - failed - skipped
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if tests and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
