#!/usr/bin/env bash
# Shows that check.sh catches what it is meant to catch: for each case, a throwaway overlay
# breaks one thing in a real overlay or example, and check.sh, run on that render alone, must
# fail with the expected message. One check.sh run per case (about 8 s each once check.sh's
# tools are cached), so this is not part of the fast CI path. With DCR_SHIM_IMAGE naming a
# built image (deploy/release.sh, or the Dockerfile's prebuilt target), it then runs
# container-test.sh on it: the image under the manifests' constraints, serving a login.
#
#   bash deploy/kubernetes/test.sh
#   DCR_SHIM_IMAGE=dcr-shim:0.1.0 bash deploy/kubernetes/test.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# case NAME BASE EXPECTED PATCH: renders BASE (a directory under deploy/kubernetes) with the
# kustomize PATCH (a `patches:` entry), runs check.sh on it, and expects a failure whose
# output contains EXPECTED.
case_() {
  local name="$1" base="$2" expected="$3" patch="$4" dir="$tmp/$1"
  mkdir -p "$dir/overlay" "$dir/rendered"
  cat > "$dir/overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$dir/overlay" "$here/$base")
patches:
$patch
EOF
  kubectl kustomize "$dir/overlay" > "$dir/rendered/$name.yaml"
  if DCR_SHIM_K8S_RENDERED="$dir/rendered" bash "$here/check.sh" > "$dir/out" 2>&1; then
    echo "FAIL $name: check.sh passed"
    failed=$((failed + 1))
  elif grep -qF -- "$expected" "$dir/out"; then
    echo "ok   $name: $(grep -F -- "$expected" "$dir/out" | head -1 | cut -c1-150)"
    passed=$((passed + 1))
  else
    echo "FAIL $name: check.sh failed, but without '$expected':"
    tail -20 "$dir/out" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

echo "== check.sh on the real overlays"
bash "$here/check.sh" > "$tmp/clean.out" 2>&1 || { cat "$tmp/clean.out"; echo "check.sh fails on the real overlays"; exit 1; }
echo "ok   clean: $(tail -1 "$tmp/clean.out")"

echo "== each check catches its kind of mistake"
case_ schema-typo overlays/postgres "'readOnlyRootFilesytem' was unexpected" '  - target: {kind: Deployment, name: dcr-shim}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/securityContext/readOnlyRootFilesytem
        value: true'

case_ crd-type examples/everything "parentRefs/0/port must be integer" '  - target: {kind: HTTPRoute, name: dcr-shim}
    patch: |-
      - op: add
        path: /spec/parentRefs/0/port
        value: https'

case_ promql examples/sled-ingress-monitoring "promtool check rules" '  - target: {kind: PrometheusRule, name: dcr-shim}
    patch: |-
      - op: replace
        path: /spec/groups/0/rules/0/expr
        value: rate(dcr_shim_http_requests_total[5m]'

case_ sled-replicas overlays/sled "sled store with 2 replicas" '  - target: {kind: Deployment, name: dcr-shim}
    patch: |-
      - op: replace
        path: /spec/replicas
        value: 2'

case_ secret-mode overlays/sled "secret volume admin-tokens: defaultMode 0o644" '  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: dcr-shim}
      spec:
        template:
          spec:
            volumes:
              - name: admin-tokens
                secret: {defaultMode: 0644}'

case_ public-open overlays/postgres "admits any pod to the public port" '  - target: {kind: NetworkPolicy, name: dcr-shim}
    patch: |-
      - op: remove
        path: /spec/ingress/0/from'

case_ public-every-namespace overlays/postgres "admits any pod to the public port" '  - target: {kind: NetworkPolicy, name: dcr-shim}
    patch: |-
      - op: replace
        path: /spec/ingress/0/from
        value: [{namespaceSelector: {}}]'

case_ admin-exposed overlays/postgres "exposes the admin port as LoadBalancer" '  - target: {kind: Service, name: dcr-shim-admin}
    patch: |-
      - op: add
        path: /spec/type
        value: LoadBalancer'

case_ wi-label overlays/aks "lacks the label azure.workload.identity/use" '  - target: {kind: Deployment, name: dcr-shim}
    patch: |-
      - op: remove
        path: /spec/template/metadata/labels/azure.workload.identity~1use'

case_ checkov-host-network overlays/sled "CKV_K8S_19" '  - target: {kind: Deployment, name: dcr-shim}
    patch: |-
      - op: add
        path: /spec/template/spec/hostNetwork
        value: true'

echo "$passed passed, $failed failed"
(( failed == 0 ))
if [[ -n "${DCR_SHIM_IMAGE:-}" ]]; then
  bash "$here/container-test.sh" "$DCR_SHIM_IMAGE"
else
  echo "container test not run: set DCR_SHIM_IMAGE to a built image to run container-test.sh"
fi
