#!/usr/bin/env bash
# The README's walk-throughs, run as written but on another port: "Walk through a login with the
# shipped tenant" and "Try a zero-touch login". Each ```sh block of those sections is taken from
# README.md, its 127.0.0.1:8080 turned into this run's port and its placeholders (CLIENT_ID,
# CODE, CLIENT_SECRET, ID_TOKEN, ID_JAG) into what the steps before it answered, and run; the
# browser step opens the README's authorize URL with curl as a browser would. The server is
# started as step 1 says (with --pid-file), on copies of the shipped tenant files, so that the
# reload command of the zero-touch walk-through is the README's own.
#
#   DCR_SHIM_BIN=target/debug/dcr-shim bash tests/readme/run.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(realpath "${DCR_SHIM_BIN:-$repo/target/debug/dcr-shim}")"
say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*" >&2; [[ -f "${work:-}/shim.log" ]] && tail -n 20 "$work/shim.log" >&2; exit 1; }
[[ -x "$bin" ]] || fail "no shim binary at $bin (cargo build first, or set DCR_SHIM_BIN)"

work="$(mktemp -d)"
cleanup() {
  [[ -f "$work/dcr-shim.pid" ]] && kill "$(cat "$work/dcr-shim.pid")" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp -r "$repo/tenants" "$work/tenants"
rm -rf "$work/tenants/examples"
cd "$work"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# The README's text of a section (from its heading to the next one).
section() { awk -v h="## $1" '$0 == h { on = 1; next } on && /^## / { exit } on' "$repo/README.md"; }
# The Nth ```sh block of a section, its port and placeholders replaced.
block() {
  section "$1" | awk -v n="$2" '/^ *```sh$/ { k++; on = (k == n); next } /^ *```$/ { on = 0 } on' \
    | sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$port|g" -e "s|CLIENT_SECRET|${client_secret:-}|g" \
      -e "s|CLIENT_ID|${client_id:-}|g" -e "s|ID_TOKEN|${id_token:-}|g" -e "s|ID_JAG|${id_jag:-}|g" \
      -e "s|CODE|${code:-}|g"
}
json() { python3 -c "import json, sys; print(json.load(sys.stdin).get('$1', ''))"; }

walk="Walk through a login with the shipped tenant"
ema="Try a zero-touch login (Enterprise-Managed Authorization)"

# ---- step 1, as the README says, on this run's port
start="$(section "$walk" | grep -o 'cargo run --release -- serve[^`]*' | head -n 1)"
[[ "$start" == *"--pid-file dcr-shim.pid"* ]] || fail "step 1 does not start the server with --pid-file: $start"
# shellcheck disable=SC2086 # the README's flags, split as a shell would
"$bin" serve ${start#cargo run --release -- serve} --listen "127.0.0.1:$port" --public-url "$base" \
  --data-dir "$work/data" --tenants "$work/tenants" >"$work/shim.log" 2>&1 &
for _ in $(seq 100); do curl -sf -o /dev/null "$base/readyz/ema-demo" && break; sleep 0.1; done
curl -sf -o /dev/null "$base/readyz/ema-demo" || fail "the server did not become ready"
[[ "$(cat dcr-shim.pid)" =~ ^[0-9]+$ ]] || fail "no pid file"

# ---- a login
client_id="$(bash -c "$(block "$walk" 1)" | json client_id)"
[[ -n "$client_id" ]] || fail "step 2 registered no client"
url="$(section "$walk" | grep -o 'http://127\.0\.0\.1:8080/demo/authorize?[^`]*' | head -n 1 \
  | sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$port|" -e "s|CLIENT_ID|$client_id|")"
jar="$work/cookies"
curl -sS -c "$jar" -b "$jar" -o consent.html "$url"
ticket="$(sed -n 's/.*name="ticket" value="\([^"]*\)".*/\1/p' consent.html | head -n 1)"
[[ -n "$ticket" ]] || fail "step 3's URL shows no consent page"
location="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$base/demo/consent" \
  --data-urlencode "ticket=$ticket" --data-urlencode decision=approve)"
location="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "${location%%\?*}" \
  --data "${location#*\?}" --data-urlencode username=reader)"
location="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$location")"
[[ "$location" == "http://127.0.0.1:9999/cb?"*"state=hello"* ]] || fail "step 4 did not land on the redirect URI: $location"
code="$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["code"][0])' "$location")"
bash -c "$(block "$walk" 2)" >token.json
[[ -n "$(json access_token <token.json)" && -n "$(json refresh_token <token.json)" ]] \
  || fail "step 5 gave no access and refresh token: $(cat token.json)"
say "PASS: $walk (port $port)"

# ---- a zero-touch login
bash -c "$(block "$ema" 1)" >agent.json
client_id="$(json client_id <agent.json)" client_secret="$(json client_secret <agent.json)"
[[ -n "$client_id" && -n "$client_secret" ]] || fail "step 1 registered no confidential client: $(cat agent.json)"
sed -i "s|^clients = \[\]|clients = [\"$client_id\"]|" tenants/ema-demo.toml
reload="$(section "$ema" | grep -o 'kill -HUP [^`]*' | head -n 1)"
[[ -n "$reload" ]] || fail "step 2 names no reload command"
bash -c "$reload"
for _ in $(seq 50); do grep -q "tenant files reloaded" "$work/shim.log" && break; sleep 0.1; done
grep -q "tenant files reloaded" "$work/shim.log" || fail "step 2's reload did not reload this server"
id_token="$(bash -c "$(block "$ema" 2)" | json id_token)"
[[ -n "$id_token" ]] || fail "step 3 gave no ID token"
id_jag="$(bash -c "$(block "$ema" 3)" | json access_token)"
[[ -n "$id_jag" ]] || fail "step 4 gave no ID-JAG"
bash -c "$(block "$ema" 4)" >minted.json
[[ -n "$(json access_token <minted.json)" ]] || fail "step 5 gave no access token: $(cat minted.json)"
[[ -z "$(json refresh_token <minted.json)" ]] || fail "step 5 handed out a refresh token"
say "PASS: $ema (port $port)"
