#!/usr/bin/env python3
"""test-report.py — read `go test -json` on stdin and print a readable log.

One line per test (PASS/FAIL/SKIP with its time), the full output of every
failed test, go test's own "ok"/"FAIL" package lines, and a closing
"N passed, N failed, N skipped" line. A skipped test fails the run: the
suite's services are required, so a skip can only hide a problem.
"""
import json
import sys

outputs = {}   # (package, test) -> [lines]
counts = {"pass": 0, "fail": 0, "skip": 0}
failed_pkgs = []
build_lines = []

for raw in sys.stdin:
    try:
        ev = json.loads(raw)
    except ValueError:
        # Build errors and other non-JSON output: show as they come.
        build_lines.append(raw.rstrip("\n"))
        print(raw, end="")
        continue
    pkg, test, action = ev.get("Package", ""), ev.get("Test"), ev.get("Action")
    if action == "output":
        outputs.setdefault((pkg, test), []).append(ev.get("Output", ""))
        line = ev.get("Output", "")
        # Lines the tests print on purpose (scenario summaries, where an
        # artifact such as a screenshot was saved) and package
        # results are shown as they come.
        if test is None and (line.startswith("ok ") or line.startswith("FAIL") or line.startswith("---")):
            continue
        if line.startswith("scenario=") or line.startswith("artifact="):
            print(line, end="")
        continue
    if test is None:
        if action in ("pass", "fail", "skip"):
            elapsed = ev.get("Elapsed", 0)
            if action == "fail":
                failed_pkgs.append(pkg)
                print("".join(outputs.get((pkg, None), [])), end="")
                print(f"FAIL\t{pkg}\t{elapsed:.3f}s")
            elif action == "pass":
                print(f"ok  \t{pkg}\t{elapsed:.3f}s")
            else:
                print(f"?   \t{pkg}\t[no test files]")
        continue
    if action in ("pass", "fail", "skip"):
        if "/" not in test:
            counts[action] += 1
        if "/" in test and action == "pass":
            continue  # subtests are shown only when they do not pass
        elapsed = ev.get("Elapsed", 0)
        print(f"--- {action.upper()}: {pkg.rsplit('/', 1)[-1]}.{test} ({elapsed:.2f}s)")
        if action != "pass":
            print("".join(outputs.get((pkg, test), [])), end="")

print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
if counts["skip"]:
    print("error: tests were skipped; the suite needs its services and must not skip", file=sys.stderr)
    sys.exit(1)
if counts["fail"] or failed_pkgs or (counts["pass"] == 0):
    sys.exit(1)
