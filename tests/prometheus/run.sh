#!/usr/bin/env bash
# The alert rules against a real Prometheus scraping a real dcr-shim.
#
#   bash tests/prometheus/run.sh          (DCR_SHIM_BIN: the binary, default target/debug/dcr-shim)
#
# 1. promtool checks deploy/prometheus/alerts.yml and runs its unit tests (alerts_test.yml).
# 2. dcr-shim starts on free loopback ports with the shipped tenants/ (the demo tenant's
#    built-in dev IdP), a temporary data directory and an admin listener (token file, 0600).
# 3. Debian's prometheus starts on a free loopback port with a temporary configuration and
#    storage: it scrapes the admin listener's /metrics every second (job "dcr-shim") and
#    evaluates alerts.yml every second.
# 4. With curl, a whole login of the demo tenant: registration, authorize, consent, the dev
#    IdP's sign-in form, callback, code exchange with PKCE, a refresh; then the code is
#    replayed, which the shim refuses and counts as reuse.
# 5. Prometheus' HTTP API must show the counters (registration, login started and completed,
#    refresh, reuse), every rule group of alerts.yml loaded with every rule healthy, and
#    DcrShimRefreshTokenReuse firing for the demo tenant and no other alert active.
#
# Installs Debian's prometheus package (which brings promtool), curl and python3 when
# missing (sudo unless root); a prometheus service the package starts is stopped and disabled
# again, since this test runs its own. Every process it starts is stopped on exit; KEEP_TMP=1
# keeps the temporary directory (logs, configuration).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo="$PWD"
bin="${DCR_SHIM_BIN:-target/debug/dcr-shim}"
rules="$repo/deploy/prometheus/alerts.yml"
t0="$EPOCHREALTIME"

elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }
say() { printf '%s  [%s]\n' "$*" "$(elapsed)"; }
# A file whose contents explain a failure (the last answer of the API being waited on).
detail=""
fail() {
  echo "FAIL: $*" >&2
  if [[ -n "$detail" && -s "$detail" ]]; then
    echo "---- $(basename "$detail"): $(cat "$detail")" >&2
  fi
  for log in "${tmp:-}/shim.log" "${tmp:-}/prometheus.log"; do
    if [[ -s "$log" ]]; then
      echo "---- last lines of $(basename "$log")" >&2
      tail -n 20 "$log" >&2
    fi
  done
  exit 1
}

# ---------------------------------------------------------------------------------------------
# What it needs
# ---------------------------------------------------------------------------------------------
missing=()
for tool in prometheus:prometheus promtool:prometheus curl:curl python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing Debian's ${missing[*]}"
  sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    # The package enables its service (Prometheus on :9090) and may have started it.
    if [[ -d /run/systemd/system ]]; then
      "${sudo[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/prometheus ]]; then
      "${sudo[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
  fi
fi
[[ -x "$bin" ]] || fail "no dcr-shim binary at $bin (build it, or set DCR_SHIM_BIN)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

# ---------------------------------------------------------------------------------------------
# The rule files on their own
# ---------------------------------------------------------------------------------------------
promtool check rules "$rules" >/dev/null || fail "promtool check rules $rules"
promtool test rules "$repo/deploy/prometheus/alerts_test.yml" >/dev/null \
  || fail "promtool test rules deploy/prometheus/alerts_test.yml (run it to see which test)"
say "PASS: promtool check rules, promtool test rules"

# ---------------------------------------------------------------------------------------------
# Processes, cleaned up on exit
# ---------------------------------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-prom-XXXXXX")"
shim_pid=""
prom_pid=""
cleanup() {
  local pid
  for pid in "$prom_pid" "$shim_pid"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ "${KEEP_TMP:-}" == 1 ]]; then
    echo "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, at most SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.2
  done
}
# JSON at stdin, a Python expression over it (`j`) at $1: prints the result.
json() { python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

port="$(free_port)"
admin_port="$(free_port)"
prom_port="$(free_port)"
base="http://127.0.0.1:$port"
admin="http://127.0.0.1:$admin_port"
prom="http://127.0.0.1:$prom_port"

# ---------------------------------------------------------------------------------------------
# dcr-shim with an admin listener
# ---------------------------------------------------------------------------------------------
(umask 077 && printf 'ci %s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >"$tmp/admin-tokens")
chmod 600 "$tmp/admin-tokens"
"$bin" serve --tenants "$repo/tenants" --listen "127.0.0.1:$port" --public-url "$base" \
  --data-dir "$tmp/data" --store "sled:$tmp/data/store" --admin-listen "127.0.0.1:$admin_port" \
  --admin-token-file "$tmp/admin-tokens" --workers 2 --shutdown-timeout 2s \
  >"$tmp/shim.log" 2>&1 &
shim_pid=$!
shim_ready() {
  kill -0 "$shim_pid" 2>/dev/null || fail "dcr-shim exited"
  curl -sf -o /dev/null "$admin/readyz"
}
wait_for 30 "dcr-shim's /readyz on the admin listener" shim_ready
say "dcr-shim ready: $base, admin listener $admin"

# ---------------------------------------------------------------------------------------------
# Prometheus scraping it every second, with the rules
# ---------------------------------------------------------------------------------------------
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: dcr-shim
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$admin_port']
EOF
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
prom_ready() {
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  curl -sf -o /dev/null "$prom/-/ready"
}
wait_for 30 "prometheus /-/ready" prom_ready
say "prometheus $(prometheus --version 2>&1 | awk 'NR == 1 { print $3 }') ready: $prom"

# The value of an instant query that returns one sample (empty when none).
query() {
  curl -sf -G "$prom/api/v1/query" --data-urlencode "query=$1" \
    | json 'j["data"]["result"][0]["value"][1] if j["data"]["result"] else ""' 2>/dev/null
}
# query_is EXPR VALUE: the query returns one sample, VALUE.
query_is() { [[ "$(query "$1")" == "$2" ]]; }

# The reuse counter must be scraped at 0 before the replay: increase() needs a first sample.
wait_for 30 "the first scrape of the admin listener" \
  query_is 'dcr_shim_reuse_detected_total{job="dcr-shim",tenant="demo"}' 0
say "PASS: prometheus scrapes the admin listener (the counters at 0)"

# ---------------------------------------------------------------------------------------------
# A login through the dev IdP, with curl
# ---------------------------------------------------------------------------------------------
# shellcheck source=tests/lib/dev-login.sh
source tests/lib/dev-login.sh
dev_login "$base" demo "$tmp" || fail "the login through the dev IdP did not complete"

exchange() {
  curl -sS -o "$tmp/token.json" -w '%{http_code}' "$base/demo/token" -d grant_type=authorization_code \
    --data-urlencode "code=$code" --data-urlencode "client_id=$client_id" \
    --data-urlencode "redirect_uri=$redirect_uri" --data-urlencode "code_verifier=$verifier"
}
status="$(curl -sS -o "$tmp/refresh.json" -w '%{http_code}' "$base/demo/token" -d grant_type=refresh_token \
  --data-urlencode "refresh_token=$refresh_token" --data-urlencode "client_id=$client_id")"
[[ "$status" == 200 ]] || fail "refresh answered $status: $(cat "$tmp/refresh.json")"
say "PASS: login through the dev IdP (register, authorize, consent, sign-in, callback, token, refresh)"

# The same code again: refused, its grant revoked, counted as reuse.
status="$(exchange)" || fail "code replay"
[[ "$status" == 400 && "$(json 'j["error"]' <"$tmp/token.json")" == invalid_grant ]] \
  || fail "a replayed code answered $status: $(cat "$tmp/token.json")"
say "PASS: a replayed code is refused (invalid_grant)"

# ---------------------------------------------------------------------------------------------
# What Prometheus sees
# ---------------------------------------------------------------------------------------------
counters_seen() {
  query_is 'dcr_shim_registrations_total{job="dcr-shim",tenant="demo"}' 1 \
    && query_is 'dcr_shim_logins_total{job="dcr-shim",tenant="demo",outcome="started"}' 1 \
    && query_is 'dcr_shim_logins_total{job="dcr-shim",tenant="demo",outcome="completed"}' 1 \
    && query_is 'dcr_shim_refreshes_total{job="dcr-shim",tenant="demo",outcome="ok"}' 1 \
    && query_is 'dcr_shim_reuse_detected_total{job="dcr-shim",tenant="demo"}' 1 \
    && query_is 'dcr_shim_family_revocations_total{job="dcr-shim",tenant="demo"}' 1
}
wait_for 30 "the counters in Prometheus" counters_seen
say "PASS: prometheus has the counters (registrations 1, logins started 1 and completed 1, refreshes ok 1, reuse 1, family revocations 1)"

# Every group of alerts.yml loaded, every rule evaluated and healthy.
mapfile -t want_groups < <(sed -n 's/^  - name: \(.*\)$/\1/p' "$rules")
want_rules="$(grep -cE '^      - (alert|record): ' "$rules")"
rules_healthy() {
  curl -sf "$prom/api/v1/rules" >"$tmp/rules.json" || return 1
  python3 - "$tmp/rules.json" "$want_rules" "${want_groups[@]}" <<'EOF'
import json, sys
groups = json.load(open(sys.argv[1]))["data"]["groups"]
want_rules, want_groups = int(sys.argv[2]), sys.argv[3:]
rules = [r for g in groups for r in g["rules"]]
sys.exit(0 if sorted(g["name"] for g in groups) == sorted(want_groups)
         and len(rules) == want_rules
         and all(r["health"] == "ok" and not r.get("lastError") for r in rules) else 1)
EOF
}
detail="$tmp/rules.json"
wait_for 30 "every rule group loaded and healthy in /api/v1/rules" rules_healthy
say "PASS: /api/v1/rules has the ${#want_groups[@]} groups of alerts.yml, $want_rules rules, all healthy"

# The replay raises DcrShimRefreshTokenReuse, and nothing else is pending or firing.
reuse_alert_firing() {
  curl -sf "$prom/api/v1/alerts" >"$tmp/alerts.json" || return 1
  [[ "$(json '" ".join(sorted("%s/%s/%s" % (a["labels"]["alertname"], a["labels"].get("tenant", ""), a["state"]) for a in j["data"]["alerts"]))' <"$tmp/alerts.json")" \
    == "DcrShimRefreshTokenReuse/demo/firing" ]]
}
detail="$tmp/alerts.json"
wait_for 30 "DcrShimRefreshTokenReuse firing for tenant demo, and no other alert" reuse_alert_firing
say "PASS: DcrShimRefreshTokenReuse fires for tenant demo; no other alert is active"

say "prometheus test passed"
