# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables it sets are for the caller
# A whole login at a tenant on the built-in dev IdP, with curl, for the shell tests (the
# Prometheus, OpenTelemetry and container tests): registration, authorize with PKCE, consent,
# the dev IdP's sign-in as alice, the callback and the code exchange.
#
#   source tests/lib/dev-login.sh
#   dev_login http://127.0.0.1:8080 demo "$tmp"        # sets the variables below, or fails
#
# Extra curl arguments for every request (a traceparent header, a --max-time): the array
# DEV_LOGIN_CURL; the user signed in: DEV_LOGIN_USER (default alice).
# Sets: client_id, redirect_uri, verifier, code, access_token, refresh_token (and leaves the
# responses in the directory given). The callback's redirect must carry the state sent and the
# issuer (RFC 9207). Needs curl and python3.

dev_login() {
  local base="$1" tenant="$2" dir="$3"
  local jar="$dir/cookies" status location ticket challenge state
  local -a extra=("${DEV_LOGIN_CURL[@]+"${DEV_LOGIN_CURL[@]}"}")
  redirect_uri="http://127.0.0.1:9999/cb"
  curl -sS -f "${extra[@]}" -o "$dir/registration.json" "$base/$tenant/register" -H 'content-type: application/json' \
    -d '{"client_name":"shell test","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}' \
    || { echo "dev_login: registration failed" >&2; return 1; }
  client_id="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])' <"$dir/registration.json")"
  verifier="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  state="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  challenge="$(python3 -c 'import base64, hashlib, sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$verifier")"

  # /authorize answers the consent page (a form with a ticket).
  status="$(curl -sS "${extra[@]}" -c "$jar" -b "$jar" -o "$dir/consent.html" -w '%{http_code}' -G "$base/$tenant/authorize" \
    --data-urlencode response_type=code --data-urlencode "client_id=$client_id" \
    --data-urlencode "redirect_uri=$redirect_uri" --data-urlencode "code_challenge=$challenge" \
    --data-urlencode code_challenge_method=S256 --data-urlencode "state=$state" \
    --data-urlencode 'scope=mcp.read offline_access')"
  [[ "$status" == 200 ]] || { echo "dev_login: authorize answered $status, not the consent page" >&2; return 1; }
  ticket="$(sed -n 's/.*name="ticket" value="\([^"]*\)".*/\1/p' "$dir/consent.html" | head -n 1)"
  [[ -n "$ticket" ]] || { echo "dev_login: no consent ticket in the consent page" >&2; return 1; }

  # Allow → the dev IdP's sign-in form, whose fields are the query it was sent to.
  read -r status location < <(curl -sS "${extra[@]}" -c "$jar" -b "$jar" -o /dev/null -w '%{http_code} %{redirect_url}\n' \
    "$base/$tenant/consent" --data-urlencode "ticket=$ticket" --data-urlencode decision=approve)
  [[ "$status" == 303 && "$location" == "$base/$tenant/dev-idp/authorize?"* ]] \
    || { echo "dev_login: consent answered $status $location, not a redirect to the dev IdP" >&2; return 1; }
  read -r status location < <(curl -sS "${extra[@]}" -c "$jar" -b "$jar" -o /dev/null -w '%{http_code} %{redirect_url}\n' \
    "${location%%\?*}" --data "${location#*\?}" --data-urlencode "username=${DEV_LOGIN_USER:-alice}")
  [[ "$status" == 303 && "$location" == "$base/$tenant/callback?"* ]] \
    || { echo "dev_login: the dev IdP's sign-in answered $status $location, not a redirect to the callback" >&2; return 1; }

  # The callback sends the browser back to the client with the shim's code.
  read -r status location < <(curl -sS "${extra[@]}" -c "$jar" -b "$jar" -o /dev/null -w '%{http_code} %{redirect_url}\n' "$location")
  [[ "$status" == 302 && "$location" == "$redirect_uri?"* ]] \
    || { echo "dev_login: the callback answered $status $location, not a redirect to the client" >&2; return 1; }
  code="$(python3 - "$location" "$state" "$base/$tenant" <<'PY'
import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query)
if q.get("state") != [sys.argv[2]] or q.get("iss") != [sys.argv[3]]:
    sys.exit(f"the redirect's state or iss is not what was sent: {q}")
print(q["code"][0])
PY
)" || { echo "dev_login: the callback's redirect to the client: $location" >&2; return 1; }

  status="$(curl -sS "${extra[@]}" -o "$dir/token.json" -w '%{http_code}' "$base/$tenant/token" -d grant_type=authorization_code \
    --data-urlencode "code=$code" --data-urlencode "client_id=$client_id" \
    --data-urlencode "redirect_uri=$redirect_uri" --data-urlencode "code_verifier=$verifier")"
  [[ "$status" == 200 ]] || { echo "dev_login: the code exchange answered $status: $(cat "$dir/token.json")" >&2; return 1; }
  access_token="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' <"$dir/token.json")"
  refresh_token="$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("refresh_token", ""))' <"$dir/token.json")"
  [[ -n "$access_token" ]] || { echo "dev_login: no access token" >&2; return 1; }
}
