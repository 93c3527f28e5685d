#!/usr/bin/env python3
"""Prints, for every build dir given, what a CI log needs to explain a red run: each meson
test that did not pass (result, time, timeout, command), its TAP `not ok` lines with their
diagnostics, the tail of its stdout and stderr, then the sanitizer reports written under
BUILD/sanitizer-logs (run-tests points ASAN_OPTIONS/UBSAN_OPTIONS log_path there, because
Criterion sends a test's stderr to /dev/null under --tap).

Criterion prints its TAP report only once every test of a binary has ended: a binary that
meson killed at its timeout shows no subtests; the harness bounds each test
(SLUICE_TEST_TIMEOUT) so that a hung test is reported as `not ok - suite::name timed out`."""
import glob
import json
import os
import re
import sys

TAIL = 40
GOOD = ("OK", "SKIP", "EXPECTEDFAIL")


def tail(text, n=TAIL):
    lines = (text or "").rstrip("\n").splitlines()
    cut = lines[-n:]
    pre = [f"[... {len(lines) - n} lines before]"] if len(lines) > n else []
    return "\n".join(pre + cut)


def not_ok_blocks(out):
    """`not ok` lines and the `#` diagnostics right after them."""
    blocks, cur = [], None
    for line in (out or "").splitlines():
        if re.match(r"^not ok\b", line):
            cur = [line]
            blocks.append(cur)
        elif cur is not None and line.startswith("#") and len(cur) < 30:
            cur.append(line)
        else:
            cur = None
    return ["\n".join(b) for b in blocks]


def main():
    shown = 0
    for d in sys.argv[1:]:
        path = f"{d}/meson-logs/testlog.json"
        try:
            lines = open(path).read().splitlines()
        except OSError:
            print(f"== {d}: no {path}")
            continue
        for line in lines:
            t = json.loads(line)
            out = t.get("stdout") or ""
            bad = t["result"] not in GOOD or re.search(r"^not ok\b", out, re.M)
            if not bad:
                continue
            shown += 1
            print(f"\n== {d}: {t['name']}: {t['result']} after {t.get('duration', 0):.1f} s, "
                  f"exit status {t.get('returncode')}")
            print(f"   command: {' '.join(t.get('command') or [])}")
            if t["result"] == "TIMEOUT" and not re.search(r"^(not )?ok\b", out, re.M):
                print("   (meson killed it at its timeout before Criterion printed its report; "
                      "see the stderr below and the test's SLUICE_TEST_TIMEOUT bound)")
            for b in not_ok_blocks(out):
                print(b)
            if out.strip():
                print(f"-- stdout (last {TAIL} lines)\n{tail(out)}")
            err = t.get("stderr") or ""
            if err.strip():
                print(f"-- stderr (last {TAIL} lines)\n{tail(err)}")
        reports = sorted(glob.glob(f"{d}/sanitizer-logs/*"))
        for r in reports:
            try:
                text = open(r, errors="replace").read()
            except OSError:
                continue
            shown += 1
            # the first stack is the one that says what went wrong; the summary ends it
            lines = text.strip("\n").splitlines()
            print(f"\n== {d}: sanitizer report {os.path.basename(r)} "
                  f"(first 50 of {len(lines)} lines)")
            print("\n".join(lines[:50]))
            summary = [x for x in lines[50:] if x.startswith("SUMMARY:")]
            if summary:
                print("[...]\n" + summary[-1])
    if not shown:
        print("no failing test and no sanitizer report in the test logs")


if __name__ == "__main__":
    main()
