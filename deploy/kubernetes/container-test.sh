#!/usr/bin/env bash
# Runs the image in Docker under the constraints of the Kubernetes manifests, and serves a
# login through it:
#
#   deploy/kubernetes/container-test.sh [IMAGE]      (default: dcr-shim:<Cargo.toml version>)
#
# The container: read-only root filesystem, uid/gid 10001 with the supplementary group FS_GROUP
# (as a pod's fsGroup), no capabilities, no-new-privileges, Docker's default seccomp profile, a
# 16 MiB tmpfs on /tmp, a data volume on /data (data directory /data/dcr-shim), 512 MiB of
# memory. The server secret and the admin tokens are laid out as a Secret volume with
# defaultMode 0440 lays them out: root-owned files of group FS_GROUP, mode 0440, reached through
# `key -> ..data/key` and `..data -> ..<timestamp>/`, and named by DCR_SHIM_SECRET_FILE and
# DCR_SHIM_ADMIN_TOKEN_FILE; the image's demo tenant comes the same way, as a ConfigMap (0644).
#
# Checks (each prints PASS or FAIL; the run exits 1 if any failed):
#   - the container is ready, then healthy (the image's HEALTHCHECK); uid, groups, capabilities,
#     no_new_privs and seccomp as above; the root filesystem read-only, /tmp and the data
#     directory writable; the secrets are what the container sees (0440, root, FS_GROUP, through
#     ..data) and the shim kept no secret of its own in the data directory
#   - a login: a client registered (DCR), the authorization code flow with PKCE through the
#     consent page and the dev IdP's form, with a cookie jar; the code redeemed for an access
#     token (the dev IdP's JWT for the demo resource, subject the user who signed in) and a
#     refresh token, which is then refreshed; the admin API shows the client, with the token
#     from the Secret and not without it
#   - refusals: the same secrets with mode 0444 stop the shim at start with a message naming
#     the mode; so do 0440 secrets when the container does not run in their group
# Containers and volumes are removed on exit.
#
# Needs docker, curl, openssl and python3 (tests/lib/dev-login.sh); not root (the secret volumes are filled by a root container
# of the image itself, so this works with rootless Docker too). The image needs /bin/sh, tar
# and coreutils (the Dockerfile's Debian images have them).
#
# Environment: DOCKER (default: docker), PORT (the host port on 127.0.0.1 for the shim; the
# admin API gets PORT+1; default: the first free pair from 18080), FS_GROUP (default: 2000).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
DOCKER=${DOCKER:-docker}
FS_GROUP=${FS_GROUP:-2000}
version=$(awk '/^\[/ { pkg = ($0 == "[package]"); next }
               pkg && /^version[ \t]*=/ { sub(/^version[ \t]*=[ \t]*"/, ""); sub(/".*/, ""); print; exit }' \
    "$repo/Cargo.toml")
image=${1:-dcr-shim:$version}
tenant=demo
resource=http://127.0.0.1:3000/mcp # the demo tenant's resource
user=ctest-user

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
expect() { if [ "$2" = "$3" ]; then pass "$1: $2"; else fail "$1: '$2', want '$3'"; fi; }
die() { echo "container-test: $*" >&2; exit 2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------
for tool in curl openssl base64 tar python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
command -v "$DOCKER" >/dev/null || die "docker not found (\$DOCKER=$DOCKER)"
"$DOCKER" info >/dev/null 2>&1 || die "the Docker engine does not answer ('$DOCKER info' failed)"
"$DOCKER" image inspect "$image" >/dev/null 2>&1 ||
    die "no image $image: build it (deploy/release.sh, or docker build -t $image .), or name another as the first argument"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${PORT:-}" ]; then
    port=$PORT
    if ! port_free "$port" || ! port_free $((port + 1)); then
        die "127.0.0.1:$port or :$((port + 1)) is in use"
    fi
else
    port=
    for p in $(seq 18080 2 18178); do
        if port_free "$p" && port_free $((p + 1)); then port=$p; break; fi
    done
    [ -n "$port" ] || die "no free pair of ports on 127.0.0.1 between 18080 and 18179: set PORT"
fi
admin_port=$((port + 1))
base=http://127.0.0.1:$port
admin=http://127.0.0.1:$admin_port

run=ctest-$$-$RANDOM
label=dcr-shim.container-test=$run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-ctest.XXXXXX")
cleanup() {
    local ids vols
    mapfile -t ids < <("$DOCKER" ps -aq --filter "label=$label" 2>/dev/null || true)
    [ ${#ids[@]} -eq 0 ] || "$DOCKER" rm -f -v "${ids[@]}" >/dev/null 2>&1 || true
    mapfile -t vols < <("$DOCKER" volume ls -q --filter "label=$label" 2>/dev/null || true)
    [ ${#vols[@]} -eq 0 ] || "$DOCKER" volume rm -f "${vols[@]}" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "container-test: $image ($("$DOCKER" run --rm --network none "$image" --version 2>&1 || true)) on $base, admin $admin"

# ---------------------------------------------------------------------------------------------
# Volumes as the kubelet lays them out
# ---------------------------------------------------------------------------------------------
# kube_volume NAME MODE DIR: a volume holding DIR's files as a Secret or ConfigMap volume does:
# each file in ..<timestamp>/ (root-owned, group FS_GROUP, mode MODE), ..data -> ..<timestamp>,
# and NAME -> ..data/NAME for each file. Filled by a root container of the image.
kube_volume() {
    local vol=$1 mode=$2 dir=$3
    "$DOCKER" volume create --label "$label" "$vol" >/dev/null
    # shellcheck disable=SC2016 # the script runs in the container, with its own $1 and $2
    tar -C "$dir" -cf - . | "$DOCKER" run --rm -i --label "$label" --network none --user 0:0 \
        --entrypoint /bin/sh -v "$vol:/volume" "$image" -c '
            set -eu
            ts=..$(date -u +%Y_%m_%d_%H_%M_%S.%N)
            mkdir "/volume/$ts"
            tar -x --no-same-owner -C "/volume/$ts" -f -
            chown -R "0:$1" /volume
            chmod "$2" "/volume/$ts"/*
            chmod 2755 /volume "/volume/$ts"
            ln -s "$ts" /volume/..data
            for f in "/volume/$ts"/*; do ln -s "..data/${f##*/}" "/volume/${f##*/}"; done
        ' sh "$FS_GROUP" "$mode"
}

t0=$(now)
mkdir -p "$tmp/secret" "$tmp/admin" "$tmp/tenants"
(umask 077
 openssl rand -hex 32 >"$tmp/secret/server-secret"
 admin_token=$(openssl rand -hex 32)
 printf 'container-test %s\n' "$admin_token" >"$tmp/admin/tokens")
admin_token=$(awk '{ print $2 }' "$tmp/admin/tokens")
"$DOCKER" run --rm --network none --entrypoint cat "$image" "/etc/dcr-shim/tenants/$tenant.toml" \
    >"$tmp/tenants/$tenant.toml" || die "the image has no /etc/dcr-shim/tenants/$tenant.toml"
kube_volume "dcr-shim-$run-secret" 0440 "$tmp/secret"
kube_volume "dcr-shim-$run-admin" 0440 "$tmp/admin"
kube_volume "dcr-shim-$run-tenants" 0644 "$tmp/tenants"
kube_volume "dcr-shim-$run-secret-0444" 0444 "$tmp/secret"
kube_volume "dcr-shim-$run-admin-0444" 0444 "$tmp/admin"
echo "container-test: volumes made in $(since "$t0") s"

# run_shim NAME SECRET_VOLUME ADMIN_VOLUME [docker run options…]: starts the shim detached, as
# the Deployment runs it, with a data volume of its own.
run_shim() {
    local name=$1 secret=$2 admin_tokens=$3
    shift 3
    "$DOCKER" volume create --label "$label" "$name-data" >/dev/null
    "$DOCKER" run -d --name "$name" --label "$label" \
        --read-only --tmpfs /tmp:rw,nosuid,nodev,size=16m,mode=1777 \
        --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges \
        --memory 512m \
        -v "$name-data:/data" \
        -v "$secret:/etc/dcr-shim/secret:ro" \
        -v "$admin_tokens:/etc/dcr-shim/admin:ro" \
        -v "dcr-shim-$run-tenants:/etc/dcr-shim/tenants:ro" \
        -e DCR_SHIM_PUBLIC_URL="$base" \
        -e DCR_SHIM_DEV_IDP_ANY_INTERFACE=true \
        -e DCR_SHIM_LISTEN=0.0.0.0:8080 \
        -e DCR_SHIM_ADMIN_LISTEN=0.0.0.0:9090 \
        -e DCR_SHIM_ADMIN_TOKEN_FILE=/etc/dcr-shim/admin/tokens \
        -e DCR_SHIM_SECRET_FILE=/etc/dcr-shim/secret/server-secret \
        -e DCR_SHIM_TENANTS=/etc/dcr-shim/tenants \
        -e DCR_SHIM_DATA_DIR=/data/dcr-shim \
        -e DCR_SHIM_WATCH_TENANTS=true \
        -e DCR_SHIM_LOG_FORMAT=json \
        "$@" "$image" serve >/dev/null 2>"$tmp/run.err" ||
        { cat "$tmp/run.err" >&2; return 1; }
}
state() { "$DOCKER" inspect --format '{{.State.Status}}' "$1" 2>/dev/null || echo gone; }
logs_tail() { "$DOCKER" logs --tail "${2:-15}" "$1" 2>&1 | sed 's/^/    /'; }
# wait_exit NAME SECONDS: the exit code once the container stopped, or "running".
wait_exit() {
    local i
    for i in $(seq 1 "$2"); do
        [ "$(state "$1")" = running ] || break
        [ "$i" -eq "$2" ] || sleep 1
    done
    if [ "$(state "$1")" = running ]; then echo running; else "$DOCKER" inspect --format '{{.State.ExitCode}}' "$1"; fi
}

# ---------------------------------------------------------------------------------------------
# The shim as the Deployment runs it
# ---------------------------------------------------------------------------------------------
echo "== the Deployment's constraints, secrets as a Secret volume (0440, group $FS_GROUP)"
c=dcr-shim-$run
t0=$(now)
run_shim "$c" "dcr-shim-$run-secret" "dcr-shim-$run-admin" --group-add "$FS_GROUP" \
    -p "127.0.0.1:$port:8080" -p "127.0.0.1:$admin_port:9090" || die "docker run failed (above)"
ready=
for _ in $(seq 1 120); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz" || true)" = 200 ]; then
        ready=1; break
    fi
    [ "$(state "$c")" = running ] || break
    sleep 0.5
done
if [ -n "$ready" ]; then
    pass "started and ready (/readyz 200) in $(since "$t0") s"
else
    fail "not ready: container $(state "$c"), exit code $("$DOCKER" inspect --format '{{.State.ExitCode}}' "$c" 2>/dev/null)"
    logs_tail "$c"
fi

proc_status() { "$DOCKER" exec "$c" cat /proc/1/status 2>/dev/null | awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }'; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -1; }
# b64url_json TOKEN: the payload of a JWT.
b64url_json() {
    local p
    p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
    while [ $((${#p} % 4)) -ne 0 ]; do p=$p=; done
    base64 -d <<<"$p" 2>/dev/null || true
}

if [ -n "$ready" ]; then
    expect "uid (real, effective, saved, fs)" "$(proc_status Uid | tr -s ' \t' ' ')" "10001 10001 10001 10001"
    expect "gid" "$(proc_status Gid | tr -s ' \t' ' ')" "10001 10001 10001 10001"
    groups=" $(proc_status Groups | tr -s ' \t' ' ') "
    if [[ "$groups" == *" $FS_GROUP "* ]]; then pass "supplementary groups:$groups"; else fail "supplementary groups:$groups (no $FS_GROUP)"; fi
    expect "effective capabilities" "$(proc_status CapEff)" 0000000000000000
    expect "bounding capabilities" "$(proc_status CapBnd)" 0000000000000000
    expect "no_new_privs" "$(proc_status NoNewPrivs)" 1
    expect "seccomp mode (2: filter, the default profile)" "$(proc_status Seccomp)" 2
    # Even root in the container gets EROFS (the shim's user would get EACCES from the
    # ownership alone, which would prove nothing).
    out=$("$DOCKER" exec -u 0 "$c" touch /probe 2>&1 || true)
    if [[ "$out" == *"Read-only file system"* ]]; then pass "read-only root (touch /probe: Read-only file system)"; else fail "read-only root: touch /probe gave '$out'"; fi
    if "$DOCKER" exec "$c" sh -c 'echo x >/tmp/probe && rm /tmp/probe' 2>/dev/null; then pass "/tmp writable"; else fail "/tmp not writable"; fi
    expect "data directory (mode, owner)" "$("$DOCKER" exec "$c" stat -c '%a %u' /data/dcr-shim 2>&1)" "700 10001"
    expect "server secret as the container sees it (mode, uid, gid)" \
        "$("$DOCKER" exec "$c" stat -L -c '%a %u %g' /etc/dcr-shim/secret/server-secret 2>&1)" "440 0 $FS_GROUP"
    expect "server secret is a link into ..data" \
        "$("$DOCKER" exec "$c" readlink /etc/dcr-shim/secret/server-secret 2>&1)" "..data/server-secret"
    expect "admin tokens as the container sees them (mode, uid, gid)" \
        "$("$DOCKER" exec "$c" stat -L -c '%a %u %g' /etc/dcr-shim/admin/tokens 2>&1)" "440 0 $FS_GROUP"
    if "$DOCKER" exec "$c" test -e /data/dcr-shim/server-secret; then
        fail "the shim generated a secret in its data directory instead of reading DCR_SHIM_SECRET_FILE"
    else
        pass "no generated secret in the data directory (the Secret's is used)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# A login through the dev IdP, as a browser with a cookie jar
# ---------------------------------------------------------------------------------------------
# shellcheck source=tests/lib/dev-login.sh
source "$repo/tests/lib/dev-login.sh"
login() {
    local t0 claims out
    t0=$(now)
    DEV_LOGIN_USER=$user
    DEV_LOGIN_CURL=(--max-time 10)
    if dev_login "$base" "$tenant" "$tmp"; then
        pass "login as $user: DCR, authorize with PKCE, consent, the dev IdP, callback (state, iss), tokens"
    else
        fail "the login through the dev IdP did not complete"; return
    fi
    local access=$access_token refresh=$refresh_token
    claims=$(b64url_json "$access")
    if [[ "$claims" == *"\"sub\":\"$user\""* && "$claims" == *"\"aud\":\"$resource\""* ]]; then
        pass "access token: a JWT for $resource, subject $user"
    else
        fail "access token claims: $claims"
    fi

    # A refresh: the shim opens what it sealed with the server secret from the Secret volume.
    out=$(curl -sS --max-time 10 -o "$tmp/refresh.json" -w '%{http_code}' "$base/$tenant/token" \
        -d grant_type=refresh_token --data-urlencode "refresh_token=$refresh" \
        --data-urlencode "client_id=$client_id")
    if [ "$out" = 200 ] && [ -n "$(json_field access_token "$tmp/refresh.json")" ] &&
        [ "$(json_field refresh_token "$tmp/refresh.json")" != "$refresh" ]; then
        pass "refresh: a new access token and a rotated refresh token"
    else
        fail "refresh: $out $(head -c 300 "$tmp/refresh.json")"
    fi
    echo "  .. login flow in $(since "$t0") s"

    out=$(curl -sS --max-time 10 -o "$tmp/admin.json" -w '%{http_code}' \
        -H "Authorization: Bearer $admin_token" "$admin/admin/v1/tenants/$tenant/clients/$client_id")
    if [ "$out" = 200 ] && grep -q "$client_id" "$tmp/admin.json"; then
        pass "admin API with the token from the Secret: the client (200)"
    else
        fail "admin API with the token: $out $(head -c 300 "$tmp/admin.json")"
    fi
    expect "admin API without a token" \
        "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$admin/admin/v1/tenants/$tenant/clients/$client_id" || true)" 401
}
if [ -n "$ready" ]; then
    echo "== a login"
    login
    t0=$(now)
    health=
    for _ in $(seq 1 90); do
        health=$("$DOCKER" inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null || true)
        [ "$health" = starting ] || break
        sleep 1
    done
    expect "the image's HEALTHCHECK (waited $(since "$t0") s)" "$health" healthy
    if [ "$failed" -gt 0 ]; then logs_tail "$c" 10; fi
fi
"$DOCKER" rm -f -v "$c" >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------
echo "== refusals"
# refused LABEL NAME PATTERN: the shim NAME stopped with a non-zero code and logged PATTERN.
refused() {
    local rc logs
    rc=$(wait_exit "$2" 30)
    logs=$("$DOCKER" logs "$2" 2>&1 || true)
    if [ "$rc" != running ] && [ "$rc" != 0 ] && grep -Eq "$3" <<<"$logs"; then
        pass "$1: not started (exit $rc)"
        grep -E "$3" <<<"$logs" | head -1 | cut -c1-400 | sed 's/^/    /'
    else
        fail "$1: exit code $rc, no /$3/ in the log"
        logs_tail "$2" 5
    fi
    "$DOCKER" rm -f -v "$2" >/dev/null 2>&1 || true
}
run_shim "$c-0444" "dcr-shim-$run-secret-0444" "dcr-shim-$run-admin-0444" --group-add "$FS_GROUP" &&
    refused "secrets of mode 0444" "$c-0444" 'mode 0?444'
run_shim "$c-nogroup" "dcr-shim-$run-secret" "dcr-shim-$run-admin" &&
    refused "secrets of mode 0440 without the group $FS_GROUP" "$c-nogroup" 'mode 0?440'

echo
echo "container-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
