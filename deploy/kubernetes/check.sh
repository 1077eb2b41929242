#!/usr/bin/env bash
# Static checks of the Kubernetes packaging in deploy/kubernetes/, for CI:
#   1. kubectl is there and its kustomize renders Components;
#   2. the base builds, and every overlay and example renders (`kubectl kustomize`);
#   3. every rendered object validates strictly (unknown fields are errors) against the
#      Kubernetes schemas of the newest four minor versions that kubernetes-validate (PyPI)
#      bundles; the custom resources (ServiceMonitor, PrometheusRule, HTTPRoute) against the
#      @kubernetes-models validators (npm), and the PrometheusRule's groups with
#      `promtool check rules`;
#   4. the packaging's own rules (checks/lint.py);
#   5. checkov's Kubernetes checks, with the skips of checkov-skips.yaml, each explained.
#
#   bash deploy/kubernetes/check.sh
#
# Needs kubectl (>= 1.22, for its kustomize), python3 with venv, and the package registries.
# Installs Debian's python3-venv, nodejs and npm, and prometheus (for promtool) when they are
# missing and this runs as root or with password-less sudo; without node or promtool the
# checks that need them are skipped, and the closing lines say so. The Python and node
# packages go into ${XDG_CACHE_HOME:-~/.cache}/dcr-shim-ci/ (or DCR_SHIM_CI_CACHE), one
# directory per set of versions, so that a second run installs nothing.
#
# DCR_SHIM_K8S_RENDERED=DIR checks the *.yaml in DIR instead of rendering the overlays
# (test.sh uses it to show that each check catches what it should).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DCR_SHIM_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dcr-shim-ci}"

# Pinned tool versions; a change makes a new cached environment.
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
PROMETHEUS_OPERATOR_MODELS_VERSION=6.0.0
# Its 2.x needs node >= 22; Debian 12 and 13 ship node 18 and 20.
GATEWAY_API_MODELS_VERSION=0.5.1

started=$SECONDS
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
skipped=()
skip() { printf 'SKIPPED: %s\n' "$*"; skipped+=("$*"); }

# Installs Debian packages when allowed (root, or sudo without a password); 1 if not.
apt_install() {
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo -n true 2>/dev/null || return 1
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "  installing Debian packages: $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step "kubectl and its kustomize"
command -v kubectl >/dev/null 2>&1 \
  || fail "kubectl is not installed; these checks render the overlays with 'kubectl kustomize' (kubectl >= 1.22)"
kubectl version --client 2>/dev/null | sed 's/^/  /' || true
# Components (kind: Component) and the `labels` field are what an old kustomize lacks: render
# a small kustomization that uses both rather than trust a version string.
mkdir -p "$tmp/probe/component"
cat > "$tmp/probe/component/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
configMapGenerator:
  - name: probe
    literals: [component=present]
EOF
cat > "$tmp/probe/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
labels:
  - pairs: {probe: labelled}
components: [component]
EOF
if ! probe_out="$(kubectl kustomize "$tmp/probe" 2>&1)" \
  || ! grep -q 'component: present' <<<"$probe_out" || ! grep -q 'probe: labelled' <<<"$probe_out"; then
  printf '%s\n' "$probe_out" >&2
  fail "this kubectl's kustomize cannot render Components or the labels field; install kubectl >= 1.22"
fi
echo "  renders Components: yes"

rendered=()
if [[ -n "${DCR_SHIM_K8S_RENDERED:-}" ]]; then
  step "checking the files in DCR_SHIM_K8S_RENDERED instead of rendering"
  mkdir -p "$tmp/rendered"
  cp "$DCR_SHIM_K8S_RENDERED"/*.yaml "$tmp/rendered/"
  for file in "$tmp"/rendered/*.yaml; do rendered+=("$file"); echo "  ${file##*/}"; done
else
  step "render the base, every overlay and every example (kubectl kustomize)"
  mkdir -p "$tmp/rendered"
  kubectl kustomize "$here/base" > "$tmp/base.yaml" || fail "the base does not build"
  echo "  base/ builds"
  for dir in "$here"/overlays/*/ "$here"/examples/*/; do
    [[ -f "$dir/kustomization.yaml" ]] || continue
    name="$(basename "$(dirname "$dir")")-$(basename "$dir")"
    kubectl kustomize "$dir" > "$tmp/rendered/$name.yaml" || fail "${dir#"$here"/} does not render"
    rendered+=("$tmp/rendered/$name.yaml")
    printf '  %-36s %3d objects\n' "${dir#"$here"/}" "$(grep -c '^kind:' "$tmp/rendered/$name.yaml")"
  done
  (( ${#rendered[@]} >= 5 )) || fail "found only ${#rendered[@]} overlays and examples to render"
fi

step "Python tools: kubernetes-validate $KUBERNETES_VALIDATE_VERSION, checkov $CHECKOV_VERSION"
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_install python3 python3-venv || fail "python3 with venv is needed: apt-get install python3-venv"
fi
py_version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$cache/k8s-py$py_version-kv$KUBERNETES_VALIDATE_VERSION-checkov$CHECKOV_VERSION"
if [[ ! -f "$venv/.complete" ]]; then
  echo "  creating $venv (once)"
  # Built in place (a venv's scripts name its path) and marked complete at the end: a run
  # that was interrupted leaves no mark, and the next one starts over.
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check -q \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
  touch "$venv/.complete"
else
  echo "  cached: $venv"
fi
py="$venv/bin/python"

step "strict schema validation (kubernetes-validate)"
"$py" "$here/checks/validate.py" "$tmp/crds.json" "${rendered[@]}"

step "custom resources: ServiceMonitor, PrometheusRule, HTTPRoute"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm || true
fi
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  node_dir="$cache/k8s-node$node_major-po$PROMETHEUS_OPERATOR_MODELS_VERSION-gw$GATEWAY_API_MODELS_VERSION"
  if [[ ! -f "$node_dir/.complete" ]]; then
    echo "  installing the validators into $node_dir (once)"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
      "@kubernetes-models/prometheus-operator@$PROMETHEUS_OPERATOR_MODELS_VERSION" \
      "@kubernetes-models/gateway-api@$GATEWAY_API_MODELS_VERSION" >/dev/null
    touch "$node_dir/.complete"
  fi
  # Next to its node_modules, so that the package names resolve.
  cp "$here/checks/crd-validate.mjs" "$node_dir/crd-validate.mjs"
  node "$node_dir/crd-validate.mjs" "$tmp/crds.json"
  echo "  (these validators check required fields, types, enums and patterns, not unknown fields)"
else
  skip "custom resources not validated: node and npm are not installed (apt-get install nodejs npm)"
fi
"$py" "$here/checks/sync_rules.py" --check || fail "components/monitoring/prometheusrule.yaml is not alerts.yml's rule set"
if ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus || true
fi
if command -v promtool >/dev/null 2>&1; then
  rule_files="$("$py" "$here/checks/rule_groups.py" "$tmp/crds.json" "$tmp/rules")"
  if [[ "$rule_files" == 0 && -z "${DCR_SHIM_K8S_RENDERED:-}" ]]; then
    fail "no PrometheusRule rendered: no example enables components/monitoring"
  fi
  if [[ "$rule_files" == 0 ]]; then
    echo "  no PrometheusRule in these files"
  elif ! (cd "$tmp/rules" && promtool check rules ./*.yaml) > "$tmp/promtool.out" 2>&1; then
    sed 's/^/  /' "$tmp/promtool.out"
    fail "promtool check rules"
  else
    grep -v '^ *$' "$tmp/promtool.out" | sed 's/^/  /'
  fi
else
  skip "PrometheusRule groups not checked: promtool is not installed (apt-get install prometheus)"
fi

step "packaging rules (checks/lint.py)"
"$py" "$here/checks/lint.py" "${rendered[@]}"

step "checkov $CHECKOV_VERSION (Kubernetes checks; skips in checkov-skips.yaml)"
# --skip-download: no call to the vendor's platform. Every check runs and the skip list is
# applied to the report, so that a skip that no longer fails is noticed too.
checkov_rc=0
"$venv/bin/checkov" -d "$tmp/rendered" --framework kubernetes --quiet --compact \
  --skip-download -o json > "$tmp/checkov.json" 2> "$tmp/checkov.err" || checkov_rc=$?
if (( checkov_rc > 1 )) || [[ ! -s "$tmp/checkov.json" ]]; then
  cat "$tmp/checkov.err" >&2
  fail "checkov did not run (exit $checkov_rc)"
fi
"$py" "$here/checks/checkov_gate.py" "$tmp/checkov.json" "$here/checkov-skips.yaml"

step "all checks passed in $((SECONDS - started)) s"
if (( ${#skipped[@]} )); then
  printf 'but %d check(s) were skipped:\n' "${#skipped[@]}"
  printf '  %s\n' "${skipped[@]}"
fi
