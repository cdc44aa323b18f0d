#!/usr/bin/python3
"""Checks test results that the runners themselves do not: per-suite floors on the number of tests
that ran, and (under CI=true) that nothing was skipped unless it is on the allow-list.

Suites are CTest labels (unit, dpdk, ...) plus "pytest". Prints one closing line
"total: N passed, N failed, N skipped" and exits 1 on any violation.
"""
import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET


def read_list(path):
    """Non-comment words of a file: 'name  # why' lines."""
    entries = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    entries.append(line)
    return entries


def junit_cases(path):
    """(name, status) for each testcase: status is passed, failed or skipped."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        if case.get("classname") and case.get("classname") not in name:
            name = f"{case.get('classname')}::{name}"
        if case.find("failure") is not None or case.find("error") is not None \
                or case.get("status") == "fail":
            status = "failed"
        elif case.find("skipped") is not None or case.get("status") in ("notrun", "disabled"):
            status = "skipped"
        else:
            status = "passed"
        cases.append((name, status))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ctest-json", required=True)
    ap.add_argument("--ctest-junit", required=True)
    ap.add_argument("--pytest-junit", required=True)
    ap.add_argument("--floors", required=True)
    ap.add_argument("--skip-allowlist", required=True)
    args = ap.parse_args()

    problems = []
    with open(args.ctest_json, encoding="utf-8") as f:
        listing = json.load(f)
    labels_of = {}
    for test in listing.get("tests", []):
        labels = []
        for prop in test.get("properties", []):
            if prop.get("name") == "LABELS":
                labels = prop.get("value", [])
        labels_of[test["name"]] = labels

    ran = {}  # suite -> number of tests that ran (passed or failed)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    skipped = []
    for name, status in junit_cases(args.ctest_junit):
        counts[status] += 1
        for label in labels_of.get(name, ["(unlabelled)"]):
            if status != "skipped":
                ran[label] = ran.get(label, 0) + 1
        if status == "skipped":
            skipped.append(name)
    for name, status in junit_cases(args.pytest_junit):
        counts[status] += 1
        if status != "skipped":
            ran["pytest"] = ran.get("pytest", 0) + 1
        else:
            skipped.append(name)

    for entry in read_list(args.floors):
        suite, floor = entry.split()
        if ran.get(suite, 0) < int(floor):
            problems.append(f"suite '{suite}' ran {ran.get(suite, 0)} tests, below its floor of "
                            f"{floor} (tests/floors.txt): were tests lost or not built?")

    allowed = set(read_list(args.skip_allowlist))
    if os.environ.get("CI") == "true":
        for name in skipped:
            if name not in allowed:
                problems.append(f"skipped under CI and not on tests/skip_allowlist.txt: {name}")
    elif skipped:
        print(f"note: {len(skipped)} skipped (fatal under CI=true unless allow-listed): "
              + ", ".join(skipped))

    print("suites: " + ", ".join(f"{k}={v}" for k, v in sorted(ran.items())))
    for p in problems:
        print(f"check_results: {p}", file=sys.stderr)
    print(f"total: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    return 1 if problems or counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
