#!/usr/bin/env bash
# Container test: the Dockerfile and docker-compose.yml, run for real on a local Docker engine
# without any image registry.
#
#   tests/container/run.sh [PREBUILT_BINARY]      (default: target/release/dcr-shim)
#
# No Rust toolchain is used. The Dockerfile's build stage gets a stand-in "rust" image
# (local/fake-rust): Debian bookworm with the prebuilt binary at /prebuilt/dcr-shim and a fake
# `cargo` that, called as `cargo build --release --locked --bin dcr-shim`, copies it to
# ./target/release/dcr-shim. The runtime base is local/debian:bookworm, made once with
# debootstrap from the machine's Debian mirror and reused afterwards. So the real Dockerfile
# and compose file run unchanged, with RUST_IMAGE / RUNTIME_IMAGE pointing at these images.
# The binary must be dynamically linked against bookworm's glibc (or static).
#
# Checks (each prints PASS or FAIL; the run exits non-zero if any failed):
#   1. docker build succeeds; a second build after a source edit reuses the dependency layer
#      (cache hit on the first cargo RUN) and rebuilds only the source layer.
#   2. The default service, in a tree with no ./secrets and none of the Entra profile's
#      variables set: compose config, up, healthy, the demo tenant's metadata answers 200,
#      read-only root, writable /data and /tmp, no capabilities, no_new_privs, uid 10001,
#      `compose exec ... dcr-shim healthcheck`, and a registered client kept across a
#      stop/start and a down/up (the named volume).
#   3. The `entra` profile with generated secrets (Entra itself is unreachable here, which is
#      expected): healthy, /readyz 200, /readyz/contoso 503, the admin API 200 with a token
#      and 401 without.
#
# It needs root (apt-get, dockerd, chown 10001), and ports 8080 and 9090 free on 127.0.0.1
# (the compose file publishes those). It installs docker.io, a compose and debootstrap when
# missing and starts dockerd when no engine answers (left running afterwards).
#
# Environment (all optional):
#   DCR_SHIM_SRC   the source tree to test (default: this repository's work tree, with
#                  uncommitted changes); it is copied to a temporary directory first
#   COMPOSE        the compose command: "docker compose" (v2) or "docker-compose" (v1);
#                  default: v2 if installed, else v1
#   DOCKER         the docker client (default: docker)
#   DEBIAN_MIRROR  the mirror for debootstrap (default: read from /etc/apt/sources*)
#   KEEP_TMP=1     keep the temporary tree
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=${DCR_SHIM_SRC:-$repo}
binary=${1:-$repo/target/release/dcr-shim}
DOCKER=${DOCKER:-docker}
project=dcr-shim-ctest            # compose project name: its containers, network and volumes
base_image=local/debian:bookworm
rust_image=local/fake-rust

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
note() { echo "  .. $*"; }
# expect LABEL GOT WANT: PASS when GOT is WANT.
expect() {
    if [ "$2" = "$3" ]; then pass "$1: $2"; else fail "$1: $2 (want $3)"; fi
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    echo "run as root (apt-get, dockerd, chown 10001)" >&2
    exit 2
fi
if [ ! -f "$binary" ]; then
    echo "no prebuilt binary at $binary (give its path as the first argument)" >&2
    exit 2
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -q >/dev/null; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
# An apt package that has an installation candidate on this machine's mirrors.
apt_has() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

command -v dockerd >/dev/null || apt_install docker.io
command -v debootstrap >/dev/null || apt_install debootstrap
for tool in curl openssl git tar; do
    command -v "$tool" >/dev/null || apt_install "$tool"
done

# Compose: v2 (`docker compose`) if present, else v1 (`docker-compose`); if neither, the
# v2 package where the mirror has one (bookworm has only v1, package docker-compose).
if [ -z "${COMPOSE:-}" ]; then
    if ! $DOCKER compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
        [ -n "$apt_updated" ] || { apt-get update -q >/dev/null; apt_updated=1; }
        for pkg in docker-compose-v2 docker-compose-plugin docker-compose; do
            if apt_has "$pkg"; then apt_install "$pkg"; break; fi
        done
    fi
    if $DOCKER compose version >/dev/null 2>&1; then COMPOSE="$DOCKER compose"; else COMPOSE=docker-compose; fi
fi

# The engine: start dockerd in the background unless one answers already.
if ! $DOCKER info >/dev/null 2>&1; then
    echo "starting dockerd (log: /tmp/dockerd.log)"
    nohup dockerd >/tmp/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
    $DOCKER info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/dockerd.log" >&2; exit 2; }
fi
echo "docker: client $($DOCKER version --format '{{.Client.Version}}'), engine $($DOCKER version --format '{{.Server.Version}}')"
echo "compose: $COMPOSE ($($COMPOSE version 2>/dev/null | head -1))"

for port in 8080 9090; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "127.0.0.1:$port is in use; the compose file publishes it" >&2
        exit 2
    fi
done

# ---------------------------------------------------------------------------------------------
# Base images
# ---------------------------------------------------------------------------------------------
# local/debian:bookworm, once: debootstrap a minbase bookworm and import it.
if ! $DOCKER image inspect "$base_image" >/dev/null 2>&1; then
    mirror=${DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then
        mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }'
                    grep -hs '^deb ' /etc/apt/sources.list | awk '{ print $2 }'; } |
                  grep -v security | grep '/debian/\?$' | head -1 || true)
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d /tmp/dcr-shim-rootfs.XXXXXX)
    echo "debootstrap bookworm from $mirror"
    t0=$(now)
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/debootstrap.log 2>&1 ||
        { echo "debootstrap failed; see /tmp/debootstrap.log" >&2; exit 2; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | $DOCKER import - "$base_image" >/dev/null
    rm -rf "$rootfs"
    echo "  $base_image made in $(since "$t0") s"
else
    echo "reusing $base_image"
fi

# local/fake-rust: the base plus the prebuilt binary and a fake cargo (made every run, since
# the binary may have changed).
fake=$(mktemp -d /tmp/dcr-shim-fake-rust.XXXXXX)
cp "$binary" "$fake/dcr-shim"
cat >"$fake/cargo" <<'EOF'
#!/bin/sh
# Stand-in for cargo in the Dockerfile's build stage: copies the prebuilt binary into place.
set -eu
echo "fake cargo: $*" >&2
case "$*" in
    "build --release --locked --bin dcr-shim")
        # Like cargo, insist on the manifest and lock file the Dockerfile copied.
        test -f Cargo.toml && test -f Cargo.lock
        mkdir -p target/release
        cp /prebuilt/dcr-shim target/release/dcr-shim ;;
    *) echo "fake cargo: unsupported arguments" >&2; exit 1 ;;
esac
EOF
chmod 755 "$fake/cargo"
printf 'FROM %s\nCOPY dcr-shim /prebuilt/dcr-shim\nCOPY cargo /usr/local/bin/cargo\n' "$base_image" >"$fake/Dockerfile"
$DOCKER build -q -t "$rust_image" "$fake" >/dev/null 2>"$fake/build.log" ||
    { cat "$fake/build.log" >&2; exit 2; }
rm -rf "$fake"

# ---------------------------------------------------------------------------------------------
# The tree under test: a copy (tracked and untracked, not ignored, files), so that ./secrets
# and edits made here never touch the work tree.
# ---------------------------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/dcr-shim-ctest.XXXXXX)
work=$tmp/tree
logs=$tmp/logs
mkdir -p "$work" "$logs"
git -C "$src" ls-files -z --cached --others --exclude-standard |
    tar -C "$src" --null -T - --ignore-failed-read -c 2>/dev/null | tar -C "$work" -x
echo "testing a copy of $src in $work"

export RUST_IMAGE=$rust_image RUNTIME_IMAGE=$base_image
# Compose in the copy, under its own project name. Check 2 runs with the Entra profile's
# variables unset, as a plain `docker compose up` would.
dc() { (cd "$work" && $COMPOSE -p "$project" "$@"); }
# The same with the Entra profile's variables set, to any value: for clean-up, which must work
# whatever state the compose file is in.
dc_any() {
    (cd "$work" && DCR_SHIM_PUBLIC_URL=${DCR_SHIM_PUBLIC_URL:-http://127.0.0.1:8080} \
        CONTOSO_UNTRUSTED_AGENTS_SECRET=${CONTOSO_UNTRUSTED_AGENTS_SECRET:-unused} \
        $COMPOSE -p "$project" --profile entra "$@")
}

cleanup() {
    dc_any down -v --remove-orphans >/dev/null 2>&1 || true
    if [ "${KEEP_TMP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
unset DCR_SHIM_PUBLIC_URL CONTOSO_UNTRUSTED_AGENTS_SECRET
dc_any down -v --remove-orphans >/dev/null 2>&1 || true   # left over from an aborted run

# Waits until the container is healthy; prints the seconds taken. Fails when it turns
# unhealthy, stops or restarts (its process exited), or is not healthy within $2 seconds.
wait_healthy() {
    local c=$1 limit=${2:-90} t0 s
    t0=$(now)
    for _ in $(seq 1 "$limit"); do
        s=$($DOCKER inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Status}} {{.RestartCount}}' "$c" 2>/dev/null || echo "gone gone 0")
        case "$s" in
            "healthy "*) since "$t0"; return 0 ;;
            "unhealthy "* | *" exited "* | *" dead "* | *" restarting "* | "gone "*) echo "$s"; return 1 ;;
            *" "[1-9]*) echo "$s"; return 1 ;;
        esac
        sleep 1
    done
    echo "still $s after ${limit}s"
    return 1
}
# HTTP status of a GET (extra curl arguments may follow the URL).
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }
# A service's container, running or not (compose v1 and v2 alike).
cid() {
    $DOCKER ps -aq --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1" | head -1
}
logs_tail() { dc_any logs --no-color --tail 20 "$1" 2>&1 | sed 's/^/    /' || true; }

# ---------------------------------------------------------------------------------------------
# Check 1: docker build, and the dependency layer cached across a source edit.
# ---------------------------------------------------------------------------------------------
echo "== 1. docker build"
build_args=(--build-arg "RUST_IMAGE=$rust_image" --build-arg "RUNTIME_IMAGE=$base_image")
# The classic builder (DOCKER_BUILDKIT=0) for a step-by-step log of cache hits that reads the
# same on every client; BuildKit (docker compose build, check 2) builds the same file.
t0=$(now)
if DOCKER_BUILDKIT=0 $DOCKER build -t dcr-shim:local "${build_args[@]}" "$work" >"$logs/build1.log" 2>&1; then
    pass "1 docker build ($(since "$t0") s)"
else
    fail "1 docker build"; tail -20 "$logs/build1.log" | sed 's/^/    /'
fi
# A source edit: the placeholder-dependency RUN must be a cache hit, the source RUN not. (A
# new edit each run: the cache keeps the layers of an earlier run's edit.)
cp "$work/src/lib.rs" "$logs/lib.rs"
echo "// container test: cache probe $(date +%s.%N) $RANDOM" >>"$work/src/lib.rs"
t0=$(now)
if DOCKER_BUILDKIT=0 $DOCKER build -t dcr-shim:local "${build_args[@]}" "$work" >"$logs/build2.log" 2>&1; then
    secs=$(since "$t0")
    # The line after each "Step n/m : RUN ..." says " ---> Using cache" or " ---> Running in".
    after() { awk -v pat="$1" 'f { print; exit } $0 ~ pat { f = 1 }' "$logs/build2.log"; }
    deps=$(after '^Step [0-9]+/[0-9]+ : RUN mkdir -p src benches')
    srcs=$(after '^Step [0-9]+/[0-9]+ : RUN cargo build --release --locked --bin dcr-shim$')
    if [[ "$deps" == *"Using cache"* && "$srcs" == *"Running in"* ]]; then
        pass "1 rebuild after a source edit: dependency layer cached, source layer rebuilt ($secs s)"
    else
        fail "1 rebuild after a source edit: dependency RUN gave '$deps', source RUN gave '$srcs'"
    fi
else
    fail "1 rebuild after a source edit"; tail -20 "$logs/build2.log" | sed 's/^/    /'
fi
cp "$logs/lib.rs" "$work/src/lib.rs"

# ---------------------------------------------------------------------------------------------
# Check 2: the default service, with no ./secrets and no Entra variables.
# ---------------------------------------------------------------------------------------------
echo "== 2. docker compose: default service"
rm -rf "$work/secrets"
if out=$(dc config -q 2>&1); then
    pass "2 compose config (no ./secrets, no Entra profile variables)"
else
    fail "2 compose config (no ./secrets, no Entra profile variables): $out"
    # Go on with the variables set, to test the rest of the file.
    note "continuing with DCR_SHIM_PUBLIC_URL=http://127.0.0.1:8080 CONTOSO_UNTRUSTED_AGENTS_SECRET=unused"
    export DCR_SHIM_PUBLIC_URL=http://127.0.0.1:8080 CONTOSO_UNTRUSTED_AGENTS_SECRET=unused
fi
t0=$(now)
if out=$(dc build dcr-shim 2>&1); then
    pass "2 compose build ($(since "$t0") s)"
else
    fail "2 compose build"; echo "$out" | tail -20 | sed 's/^/    /'
fi
t0=$(now)
c=
if out=$(dc up -d dcr-shim 2>&1) && c=$(cid dcr-shim) && [ -n "$c" ]; then
    if took=$(wait_healthy "$c" 90); then
        pass "2 compose up -d: healthy after $(since "$t0") s (health wait $took s)"
    else
        fail "2 compose up -d: not healthy (health, state, restarts: $took)"; logs_tail dcr-shim
    fi
else
    fail "2 compose up -d: $out"
fi
if [ -n "$c" ]; then
    expect "2 GET /.well-known/oauth-authorization-server/demo" \
        "$(status http://127.0.0.1:8080/.well-known/oauth-authorization-server/demo)" 200

    # Read-only root: even root in the container gets EROFS (the service user would get EACCES
    # from the ownership alone, which would prove nothing).
    if out=$($DOCKER exec -u 0 "$c" touch /x 2>&1); then
        fail "2 read-only root: touch /x succeeded"
    elif [[ "$out" == *"Read-only file system"* ]]; then
        pass "2 read-only root (touch /x: Read-only file system)"
    else
        fail "2 read-only root: touch /x failed otherwise: $out"
    fi
    if $DOCKER exec "$c" sh -c 'touch /data/.probe /tmp/.probe && rm /data/.probe /tmp/.probe'; then
        pass "2 /data and /tmp writable by the service user"
    else
        fail "2 /data and /tmp writable by the service user"
    fi
    proc=$($DOCKER exec "$c" cat /proc/1/status)
    capeff=$(awk '/^CapEff:/ { print $2 }' <<<"$proc")
    nnp=$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$proc")
    uid=$(awk '/^Uid:/ { print $2 }' <<<"$proc")
    if [ "$capeff" = 0000000000000000 ] && [ "$nnp" = 1 ] && [ "$uid" = 10001 ]; then
        pass "2 process 1: CapEff $capeff, NoNewPrivs $nnp, uid $uid"
    else
        fail "2 process 1: CapEff $capeff, NoNewPrivs $nnp, uid $uid (want 0000000000000000, 1, 10001)"
    fi
    if out=$(dc exec -T dcr-shim dcr-shim healthcheck 2>&1); then
        pass "2 compose exec dcr-shim dcr-shim healthcheck: exit 0"
    else
        fail "2 compose exec dcr-shim dcr-shim healthcheck: $out"
    fi

    # Data kept across a restart: a registered client must still be there (its RFC 7592
    # read answers 200), after stop/start and after down/up (the named volume).
    reg=$(curl -s --max-time 10 -H 'content-type: application/json' \
        -d '{"client_name":"container test","redirect_uris":["http://127.0.0.1:33333/cb"],"token_endpoint_auth_method":"none"}' \
        http://127.0.0.1:8080/demo/register || true)
    uri=$(sed -n 's/.*"registration_client_uri":"\([^"]*\)".*/\1/p' <<<"$reg")
    tok=$(sed -n 's/.*"registration_access_token":"\([^"]*\)".*/\1/p' <<<"$reg")
    if [ -z "$uri" ] || [ -z "$tok" ]; then
        fail "2 register a client: $reg"
    else
        for how in "stop/start" "down/up"; do
            if [ "$how" = stop/start ]; then
                { dc stop dcr-shim && dc start dcr-shim; } >/dev/null 2>&1 || true
            else
                { dc down && dc up -d dcr-shim; } >/dev/null 2>&1 || true
            fi
            c=$(cid dcr-shim)
            took="no container"
            if [ -n "$c" ] && took=$(wait_healthy "$c" 90); then
                expect "2 after $how (healthy in $took s): the registered client's RFC 7592 read" \
                    "$(status -H "Authorization: Bearer $tok" "$uri")" 200
            else
                fail "2 after $how: not healthy ($took)"; logs_tail dcr-shim
            fi
        done
    fi
fi
# Both services publish 8080: the default one goes before the Entra one comes.
dc_any down >/dev/null 2>&1 || true

# ---------------------------------------------------------------------------------------------
# Check 3: the entra profile.
# ---------------------------------------------------------------------------------------------
echo "== 3. docker compose --profile entra"
mkdir -p "$work/secrets"
openssl rand -hex 32 >"$work/secrets/server-secret"
token=$(openssl rand -hex 32)
echo "ops $token" >"$work/secrets/admin-tokens"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=dcr-shim container test' \
    -keyout "$work/secrets/trusted-agents.key" -out "$work/secrets/trusted-agents.crt" 2>/dev/null
# As the compose file says: owned by the image's user, private to it.
echo "not-a-real-secret" >"$work/secrets/untrusted-agents.secret"
chmod 600 "$work"/secrets/*
chown 10001 "$work"/secrets/*
# The example tenant as ./tenants-entra/contoso.toml, with its client secret read from the
# compose secret, as docs/operations.md says.
mkdir -p "$work/tenants-entra"
sed 's|^secret_env = "CONTOSO_UNTRUSTED_AGENTS_SECRET"|secret_file = "/run/secrets/untrusted-agents.secret"|' \
    "$work/tenants/examples/entra.toml" >"$work/tenants-entra/contoso.toml"
grep -q '^secret_file = "/run/secrets/untrusted-agents.secret"' "$work/tenants-entra/contoso.toml"
export DCR_SHIM_PUBLIC_URL=https://auth.example.test

t0=$(now)
healthy=
if out=$(dc --profile entra up -d dcr-shim-entra 2>&1) && c=$(cid dcr-shim-entra) && [ -n "$c" ]; then
    if took=$(wait_healthy "$c" 90); then
        pass "3 entra: healthy after $(since "$t0") s (health wait $took s)"
        healthy=1
    else
        fail "3 entra: not healthy (health, state, restarts: $took)"; logs_tail dcr-shim-entra
    fi
else
    fail "3 entra: compose up: $out"
fi
if [ -z "$healthy" ]; then
    fail "3 entra: /readyz, /readyz/contoso and the admin API not tried (no healthy server)"
else
    # Entra is unreachable from here: the server is ready, the tenant is not.
    expect "3 GET /readyz" "$(status http://127.0.0.1:8080/readyz)" 200
    expect "3 GET /readyz/contoso (upstream unreachable)" "$(status http://127.0.0.1:8080/readyz/contoso)" 503
    expect "3 admin GET /admin/v1/tenants with the token" \
        "$(status -H "Authorization: Bearer $token" http://127.0.0.1:9090/admin/v1/tenants)" 200
    expect "3 admin GET /admin/v1/tenants without a token" \
        "$(status http://127.0.0.1:9090/admin/v1/tenants)" 401
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
