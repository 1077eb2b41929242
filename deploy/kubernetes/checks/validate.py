"""Strict schema validation of rendered manifests against the Kubernetes API schemas that the
kubernetes-validate package bundles, for the newest four minor versions it has.

    python validate.py OUT_CRDS.json RENDERED.yaml...

Every object of a built-in API group must validate, strictly (unknown fields are errors), in
each of the four versions; an object whose kind has no schema there is an error too. Objects
of the custom resource groups below are not in those schemas: they are written to
OUT_CRDS.json (a list of {"file", "object"}) for check.sh to validate by other means, and
any other custom group is an error, so that a new one is not skipped unnoticed.
"""

import json
import os
import sys

import yaml
from kubernetes_validate import utils as kv

# Custom resource groups check.sh validates itself (crd-validate.mjs, promtool).
CRD_GROUPS = {"monitoring.coreos.com", "gateway.networking.k8s.io"}
VERSIONS_WANTED = 4


def newest_minors(count):
    """The newest `count` minor versions bundled, e.g. ['1.34.0', …, '1.37.0']."""
    by_minor = {}
    for version in kv.all_versions():
        by_minor[kv.major_minor(version)] = version
    minors = sorted(by_minor, key=lambda mm: tuple(int(p) for p in mm.split(".")))
    if len(minors) < count:
        sys.exit(f"kubernetes-validate bundles only {minors}; {count} minor versions wanted")
    return [by_minor[mm] for mm in minors[-count:]]


def group_of(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def main():
    out_crds, files = sys.argv[1], sys.argv[2:]
    versions = newest_minors(VERSIONS_WANTED)
    print(f"kubernetes-validate {kv.__version__}: strict schemas of Kubernetes "
          + ", ".join(kv.major_minor(v) for v in versions))
    failures = 0
    crds = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        shown = os.path.basename(path)
        checked = 0
        failures_before = failures
        for doc in docs:
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            group = group_of(doc.get("apiVersion", ""))
            if group in CRD_GROUPS:
                crds.append({"file": shown, "object": doc})
                continue
            for version in versions:
                try:
                    kv.validate(doc, version, strict=True)
                except kv.ValidationError as e:
                    where = ".".join(str(p) for p in e.path) or "(top level)"
                    print(f"ERROR {shown}: {name} against {kv.major_minor(version)}: {where}: {e.message}")
                    failures += 1
                except kv.SchemaNotFoundError as e:
                    print(f"ERROR {shown}: {name}: {e.message} (a custom resource? add its group to "
                          "CRD_GROUPS and validate it in check.sh)")
                    failures += 1
                    break
            checked += 1
        if failures == failures_before:
            print(f"  {shown}: {checked} object(s) valid in all {len(versions)} versions")
    with open(out_crds, "w", encoding="utf-8") as f:
        json.dump(crds, f)
    if failures:
        sys.exit(f"{failures} schema error(s)")


if __name__ == "__main__":
    main()
