"""Keeps the monitoring component's PrometheusRule the same rule set as
deploy/prometheus/alerts.yml (the one source, tested with promtool there).

    python sync_rules.py --check   fails when the two differ (check.sh runs this)
    python sync_rules.py --write   rewrites prometheusrule.yaml from alerts.yml
"""

import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ALERTS = os.path.join(HERE, "..", "..", "prometheus", "alerts.yml")
RULE = os.path.join(HERE, "..", "components", "monitoring", "prometheusrule.yaml")
HEADER = """\
# Alerts on the shim's metrics, for the Prometheus Operator: the rule groups of
# deploy/prometheus/alerts.yml (where they are documented and unit-tested with promtool),
# copied here by `python3 deploy/kubernetes/checks/sync_rules.py --write`; check.sh fails
# when the two differ. The ServiceMonitor sets job="dcr-shim" (jobLabel), which
# DcrShimScrapeDown matches.
"""


def groups(path, under_spec):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return (doc["spec"] if under_spec else doc)["groups"]


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    source = groups(ALERTS, False)
    if mode == "--write":
        rule = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {
                "name": "dcr-shim",
                "labels": {
                    "app.kubernetes.io/name": "dcr-shim",
                    "app.kubernetes.io/part-of": "dcr-shim",
                    "app.kubernetes.io/component": "admin",
                },
            },
            "spec": {"groups": source},
        }
        with open(RULE, "w", encoding="utf-8") as f:
            f.write(HEADER)
            yaml.safe_dump(rule, f, sort_keys=False, width=100, allow_unicode=True)
        print(f"wrote {os.path.relpath(RULE)} from {os.path.relpath(ALERTS)}")
        return 0
    if groups(RULE, True) != source:
        print("the PrometheusRule differs from deploy/prometheus/alerts.yml: run "
              "python3 deploy/kubernetes/checks/sync_rules.py --write", file=sys.stderr)
        return 1
    print("  the PrometheusRule holds the rule groups of deploy/prometheus/alerts.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
