#!/usr/bin/env python3
"""Sums the tests of every build dir given: TAP subtests where a test speaks TAP,
otherwise the test itself, and prints `N passed, N failed` (skips counted apart)."""
import json
import os
import re
import sys

passed = failed = skipped = 0
for d in sys.argv[1:]:
    try:
        lines = open(f"{d}/meson-logs/testlog.json").read().splitlines()
    except OSError:
        print(f"{d}: no test log", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        out = t.get("stdout") or ""
        oks = re.findall(r"^(not ok|ok)\b(.*)$", out, re.M)
        if oks:
            for verdict, rest in oks:
                if "# SKIP" in rest:
                    skipped += 1
                elif verdict == "ok":
                    passed += 1
                else:
                    failed += 1
            # a binary that crashed or timed out after some ok lines still fails
            if t["result"] not in ("OK", "SKIP", "EXPECTEDFAIL") and not any(
                    v == "not ok" for v, _ in oks):
                failed += 1
        elif t["result"] == "SKIP":
            skipped += 1
        elif t["result"] in ("OK", "EXPECTEDFAIL"):
            passed += 1
        else:
            failed += 1
# checks run outside meson (e.g. "format:passed format2:failed")
for item in os.environ.get("SLUICE_EXTRA_RESULTS", "").split():
    name, _, result = item.partition(":")
    if result == "passed":
        passed += 1
    else:
        failed += 1
        print(f"{name}: {result}", file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
