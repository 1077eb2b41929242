"""Judges a checkov JSON report against checkov-skips.yaml.

    python checkov_gate.py REPORT.json SKIPS.yaml

Fails on a failed check that the skip list does not name, on a skip without an id or a
reason, on a skip that no longer fails anywhere (so the list does not outlive its reasons),
on files checkov could not parse, and on a report that examined nothing.
"""

import json
import os
import sys

import yaml


def main():
    report_file, skips_file = sys.argv[1], sys.argv[2]
    with open(report_file, encoding="utf-8") as f:
        report = json.load(f)
    with open(skips_file, encoding="utf-8") as f:
        skips = yaml.safe_load(f)["skips"]
    shown_skips = os.path.basename(skips_file)
    problems = []
    reasons = {}
    for skip in skips:
        if not skip.get("id") or not str(skip.get("reason", "")).strip():
            problems.append(f"{shown_skips}: entry {skip} needs an id and a reason")
        reasons[skip.get("id")] = skip
    # One framework gives one report; several would give a list.
    if isinstance(report, list):
        sys.exit(f"unexpected checkov report with {len(report)} frameworks")
    summary = report["summary"]
    if summary["parsing_errors"]:
        problems.append(f"checkov could not parse {summary['parsing_errors']} file(s)")
    if summary["resource_count"] == 0 or summary["passed"] == 0:
        problems.append(f"checkov examined nothing: {summary}")
    failed = report.get("results", {}).get("failed_checks", [])
    seen = set()
    for check in failed:
        seen.add(check["check_id"])
        if check["check_id"] not in reasons:
            problems.append(f"{check['check_id']} ({check['check_name']}) fails for "
                            f"{check['resource']} in {check['file_path'].lstrip('/')}")
    for check_id in reasons:
        if check_id and check_id not in seen:
            problems.append(f"{check_id} is skipped in {shown_skips} but no longer fails: remove it")
    print(f"  {summary['resource_count']} resources, {summary['passed']} checks passed, "
          f"{len(failed)} failed")
    for check_id in sorted(seen & set(reasons)):
        print(f"    {check_id} ({reasons[check_id].get('title', '')}): skipped on purpose, "
              f"the reason is in {shown_skips}")
    for problem in problems:
        print(f"ERROR {problem}")
    if problems:
        sys.exit(f"checkov: {len(problems)} problem(s)")


if __name__ == "__main__":
    main()
