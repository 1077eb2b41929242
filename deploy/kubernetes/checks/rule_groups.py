"""Writes the rule groups of each PrometheusRule that validate.py set aside as a Prometheus
rule file, for `promtool check rules`.

    python rule_groups.py CRDS.json OUT_DIR

Prints how many files it wrote.
"""

import json
import os
import sys

import yaml


def main():
    crds_file, out = sys.argv[1], sys.argv[2]
    with open(crds_file, encoding="utf-8") as f:
        items = json.load(f)
    os.makedirs(out, exist_ok=True)
    written = 0
    for item in items:
        obj = item["object"]
        if obj["kind"] != "PrometheusRule":
            continue
        name = f"{item['file'].removesuffix('.yaml')}.PrometheusRule-{obj['metadata']['name']}.yaml"
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": obj["spec"]["groups"]}, f, sort_keys=False)
        written += 1
    print(written)


if __name__ == "__main__":
    main()
