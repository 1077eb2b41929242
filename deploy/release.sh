#!/usr/bin/env bash
# Builds a release of dcr-shim into dist/<version>/:
#
#   dcr-shim-<version>-<target>.tar.gz   the binary, LICENSE*, README.md, CHANGELOG.md
#   dcr-shim-<version>-image.tar.gz      the container image dcr-shim:<version> (docker save)
#   dcr-shim-<version>.cdx.json          the SBOM (CycloneDX JSON, from cargo-cyclonedx)
#   RELEASE-NOTES.md                     version, commit, minimum glibc, artifacts, changelog
#   SHA256SUMS                           over every file above
#
# Usage: deploy/release.sh [options]
#
#   --binary PATH          package this binary instead of running
#                          `cargo build --release --locked --bin dcr-shim`
#   --no-image             no container image (then Docker is not needed)
#   --no-sbom              no SBOM (then cargo is not needed with --binary)
#   --runtime-image IMAGE  the image's base (default: debian:bookworm-slim, the Dockerfile's;
#                          pulled when not present). Without a registry, make one with
#                          deploy/image/make-base.sh and pass dcr-shim-base:bookworm
#   --source URL           the repository URL for the image's org.opencontainers.image.source
#                          label (default: Cargo.toml's `repository`, if any)
#   --out DIR              where <version>/ goes (default: dist)
#   --allow-dirty          release from a work tree with uncommitted changes (the notes say so)
#   --force                replace an existing DIR/<version>/
#
# The binary must say the version of Cargo.toml (`dcr-shim --version`), and the commit of HEAD
# when it prints one. The image is the Dockerfile's `prebuilt` stage around that same binary:
# no Rust toolchain runs in a container. The minimum glibc comes from the binary's versioned
# symbols; it must not exceed the runtime image's (bookworm: 2.36).
#
# Environment: DOCKER (default: docker), SOURCE_DATE_EPOCH (the time written into the tarball
# and the image's created label; default: the commit's time for the tarball, now for the image).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER=${DOCKER:-docker}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "release: error: $*" >&2; exit 1; }
warn() { echo "release: warning: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

binary=
image=1
sbom=1
runtime_image=debian:bookworm-slim
source_url=
out=$repo/dist
allow_dirty=
force=
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --no-image) image=; shift ;;
        --no-sbom) sbom=; shift ;;
        --runtime-image) [ $# -ge 2 ] || die "--runtime-image needs an image"; runtime_image=$2; shift 2 ;;
        --runtime-image=*) runtime_image=${1#*=}; shift ;;
        --source) [ $# -ge 2 ] || die "--source needs a URL"; source_url=$2; shift 2 ;;
        --source=*) source_url=${1#*=}; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
        --out=*) out=${1#*=}; shift ;;
        --allow-dirty) allow_dirty=1; shift ;;
        --force) force=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
t_start=$(now)
# Paths given relative to where the script was called from.
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
case "$binary" in "" | /*) ;; *) binary=$PWD/$binary ;; esac
cd "$repo"

# ---------------------------------------------------------------------------------------------
# What is released: version, commit, work tree state
# ---------------------------------------------------------------------------------------------
version=$(awk '/^\[/ { pkg = ($0 == "[package]"); next }
               pkg && /^version[ \t]*=/ { sub(/^version[ \t]*=[ \t]*"/, ""); sub(/".*/, ""); print; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [package]"
if [ -z "$source_url" ]; then
    source_url=$(awk '/^\[/ { pkg = ($0 == "[package]"); next }
                      pkg && /^repository[ \t]*=/ { sub(/^repository[ \t]*=[ \t]*"/, ""); sub(/".*/, ""); print; exit }' Cargo.toml)
fi
command -v git >/dev/null || die "git not found: the release records the commit it is built from"
commit=$(git rev-parse --verify HEAD 2>/dev/null) || die "not a git work tree with a commit: $repo"
short=$(git rev-parse --short=12 HEAD)
commit_time=$(git log -1 --format=%ct HEAD)
dirty=
if [ -n "$(git status --porcelain)" ]; then
    dirty=1
    if [ -z "$allow_dirty" ]; then
        git status --short >&2
        die "the work tree has uncommitted changes (above): commit or stash them, or pass --allow-dirty"
    fi
    warn "releasing from a work tree with uncommitted changes (--allow-dirty); the notes say so"
fi
epoch=${SOURCE_DATE_EPOCH:-$commit_time}
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
else
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
fi
dest=$out/$version
echo "release: dcr-shim $version, commit $short${dirty:+ (with uncommitted changes)}, into $dest"

# ---------------------------------------------------------------------------------------------
# Prerequisites, all checked before anything is built
# ---------------------------------------------------------------------------------------------
for tool in tar gzip sha256sum awk od; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
# The glibc symbol versions the binary needs ("GLIBC_2.34 ..." lines, its version references),
# the symbols that need them ("2.34 symbol" lines) and the libraries it links.
if command -v objdump >/dev/null; then
    version_refs() { objdump -p "$1"; }
    glibc_symbols() { objdump -T "$1" | sed -nE 's/.*\(GLIBC_([0-9.]+)\)[[:space:]]+([^[:space:]]+)$/\1 \2/p'; }
    needed() { objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'; }
elif command -v readelf >/dev/null; then
    version_refs() { readelf -W --version-info "$1"; }
    glibc_symbols() { readelf -W --dyn-syms "$1" | sed -nE 's/.*[[:space:]]([^[:space:]@]+)@+GLIBC_([0-9.]+)([[:space:]].*)?$/\2 \1/p'; }
    needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
else
    die "neither objdump nor readelf found (Debian: apt-get install binutils): they read the minimum glibc from the binary"
fi
if [ -n "$image" ]; then
    command -v "$DOCKER" >/dev/null ||
        die "docker not found (\$DOCKER=$DOCKER): the release includes the container image. Install Docker (Debian: apt-get install docker.io) and start its engine, or pass --no-image"
    "$DOCKER" info >/dev/null 2>&1 ||
        die "'$DOCKER info' failed: the Docker engine does not answer. Start it (systemctl start docker, or dockerd in the background), or use an account allowed to reach it, or pass --no-image"
    if ! "$DOCKER" image inspect "$runtime_image" >/dev/null 2>&1; then
        echo "release: pulling the runtime image $runtime_image"
        "$DOCKER" pull "$runtime_image" >/dev/null ||
            die "the runtime image $runtime_image is neither present nor pullable. Without a registry, make a bookworm base from a Debian mirror with deploy/image/make-base.sh and pass --runtime-image dcr-shim-base:bookworm"
    fi
fi
if [ -z "$binary" ] || [ -n "$sbom" ]; then
    command -v cargo >/dev/null ||
        die "cargo not found: it builds the binary (or pass --binary PATH) and the SBOM (or pass --no-sbom)"
fi
if [ -n "$sbom" ] && ! cargo cyclonedx --version >/dev/null 2>&1; then
    echo "release: installing cargo-cyclonedx (cargo install --locked cargo-cyclonedx)"
    t0=$(now)
    cargo install --locked cargo-cyclonedx ||
        die "cargo install cargo-cyclonedx failed: install it by hand, or pass --no-sbom"
    echo "release: cargo-cyclonedx installed in $(since "$t0")"
fi
if [ -e "$dest" ] && [ -z "$force" ]; then
    die "$dest exists: remove it, or pass --force to replace it"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-release.XXXXXX")
# The artifacts are written beside DEST and renamed into place once all are there.
mkdir -p "$out"
partial=$(mktemp -d "$out/.$version.partial.XXXXXX")
trap 'rm -rf "$tmp" "$partial"' EXIT

# ---------------------------------------------------------------------------------------------
# The binary
# ---------------------------------------------------------------------------------------------
if [ -z "$binary" ]; then
    echo "release: cargo build --release --locked --bin dcr-shim"
    t0=$(now)
    cargo build --release --locked --bin dcr-shim
    binary=${CARGO_TARGET_DIR:-target}/release/dcr-shim
    echo "release: built in $(since "$t0")"
fi
[ -f "$binary" ] || die "no binary at $binary"
[ "$(head -c 4 "$binary" | od -An -c | tr -d ' \n')" = '177ELF' ] || die "$binary is not an ELF executable"
case $(od -An -tu2 -j18 -N2 "$binary" | tr -d ' ') in
    62) arch=x86_64 ;;
    183) arch=aarch64 ;;
    *) die "$binary: an ELF machine this script does not name (only x86_64 and aarch64)" ;;
esac

says=$("$binary" --version 2>&1) || die "$binary --version failed: $says"
case "$says" in
    "dcr-shim $version" | "dcr-shim $version "*) ;;
    *) die "$binary says '$says', Cargo.toml says version $version: rebuild it" ;;
esac
built_from=$(sed -n 's/.*(commit \([0-9a-zA-Z]*\)).*/\1/p' <<<"$says")
if [ -z "$built_from" ] || [ "$built_from" = unknown ]; then
    warn "the binary does not know its commit ('$says'); it is assumed to be built from $short"
elif [ "$built_from" != "$short" ] && [ "$built_from" != "${commit:0:${#built_from}}" ]; then
    die "the binary was built from commit $built_from, HEAD is $short: rebuild it (or check out $built_from)"
fi

# The minimum glibc: the newest GLIBC_x.y version the binary refers to.
glibc=$(version_refs "$binary" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -uV | tail -1 || true)
if [ -n "$glibc" ]; then
    target=$arch-unknown-linux-gnu
    why=$(glibc_symbols "$binary" | awk -v v="$glibc" '$1 == v { print $2 }' | sort -u | head -6 | paste -sd, - | sed 's/,/, /g')
    glibc_line="glibc $glibc or newer (GLIBC_$glibc is the newest symbol version it needs${why:+, for $why})"
else
    target=$arch-unknown-linux-musl
    glibc_line="none (the binary refers to no glibc symbol version: statically linked)"
fi
libraries=$(needed "$binary" | paste -sd, - | sed 's/,/, /g')
echo "release: $binary: $says, $target, minimum $glibc_line"

# ---------------------------------------------------------------------------------------------
# The tarball: reproducible (sorted, numeric root owner, fixed times, gzip without a name)
# ---------------------------------------------------------------------------------------------
t0=$(now)
name=dcr-shim-$version-$target
stage=$tmp/$name
mkdir -p "$stage"
install -m 0755 "$binary" "$stage/dcr-shim"
shopt -s nullglob
docs=(LICENSE* README.md CHANGELOG.md)
shopt -u nullglob
for f in "${docs[@]}"; do install -m 0644 "$f" "$stage/$f"; done
tarball=$name.tar.gz
tar -C "$tmp" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --format=gnu -cf - "$name" | gzip -9n >"$partial/$tarball"
echo "release: $tarball ($(du -h "$partial/$tarball" | cut -f1), ${#docs[@]} documents) in $(since "$t0")"

# ---------------------------------------------------------------------------------------------
# The container image: the Dockerfile's prebuilt stage, in a context of the binary and tenants/
# ---------------------------------------------------------------------------------------------
image_tag=dcr-shim:$version
image_file=
image_id=
image_glibc=
if [ -n "$image" ]; then
    t0=$(now)
    ctx=$tmp/context
    mkdir -p "$ctx"
    cp -a tenants "$ctx/tenants"
    install -m 0755 "$binary" "$ctx/dcr-shim"
    if ! "$DOCKER" build --target prebuilt -f "$repo/Dockerfile" -t "$image_tag" \
        --build-arg "RUNTIME_IMAGE=$runtime_image" --build-arg BINARY=dcr-shim \
        --build-arg "VERSION=$version" --build-arg "REVISION=$commit" \
        --build-arg "CREATED=$created" --build-arg "SOURCE=$source_url" \
        "$ctx" >"$tmp/build.log" 2>&1; then
        tail -30 "$tmp/build.log" >&2
        die "docker build failed (above)"
    fi
    image_id=$("$DOCKER" image inspect --format '{{.Id}}' "$image_tag")
    in_image=$("$DOCKER" run --rm --network none "$image_tag" --version 2>&1) ||
        die "the image does not run its binary: $in_image (does the runtime image have glibc $glibc?)"
    [ "$in_image" = "$says" ] || die "the image's binary says '$in_image', not '$says'"
    image_glibc=$("$DOCKER" run --rm --network none --entrypoint getconf "$image_tag" GNU_LIBC_VERSION 2>/dev/null || true)
    echo "release: image $image_tag ($image_id) on $runtime_image${image_glibc:+ ($image_glibc)} built in $(since "$t0")"
    t0=$(now)
    image_file=dcr-shim-$version-image.tar.gz
    "$DOCKER" save "$image_tag" | gzip -n >"$partial/$image_file"
    echo "release: $image_file ($(du -h "$partial/$image_file" | cut -f1)) in $(since "$t0")"
fi

# ---------------------------------------------------------------------------------------------
# The SBOM: the crate's dependencies for this target, as Cargo.lock pins them
# ---------------------------------------------------------------------------------------------
sbom_file=
if [ -n "$sbom" ]; then
    t0=$(now)
    # cargo-cyclonedx writes next to Cargo.toml, and may update Cargo.lock: it runs in a copy
    # of the tree (tracked and untracked, not ignored, files).
    src=$tmp/sbom-src
    mkdir -p "$src"
    git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$src" -xf -
    (cd "$src" && SOURCE_DATE_EPOCH=$epoch cargo cyclonedx --format json --spec-version 1.5 \
        --target "$target" --override-filename "dcr-shim-$version.cdx") >"$tmp/sbom.log" 2>&1 ||
        { cat "$tmp/sbom.log" >&2; die "cargo cyclonedx failed (above)"; }
    sbom_file=dcr-shim-$version.cdx.json
    [ -f "$src/$sbom_file" ] || { cat "$tmp/sbom.log" >&2; die "cargo cyclonedx wrote no $sbom_file"; }
    cp "$src/$sbom_file" "$partial/$sbom_file"
    components=$(grep -o '"bom-ref"' "$partial/$sbom_file" | wc -l)
    echo "release: $sbom_file ($components components) in $(since "$t0")"
fi

# ---------------------------------------------------------------------------------------------
# Release notes, checksums
# ---------------------------------------------------------------------------------------------
changes=
if [ -f CHANGELOG.md ]; then
    changes=$(awk -v v="$version" '
        index($0, "## [" v "]") == 1 { on = 1; next }
        on && /^## \[/ { exit }
        on { print }' CHANGELOG.md)
    [ -n "$changes" ] || warn "CHANGELOG.md has no section '## [$version]' yet"
fi
{
    echo "# dcr-shim $version"
    echo
    echo "- Commit: $commit${dirty:+ (built from a work tree with uncommitted changes)}"
    echo "- Binary: $target; \`dcr-shim --version\`: $says"
    echo "- Minimum glibc: $glibc_line"
    echo "- Shared libraries: ${libraries:-none}"
    if [ -n "$image" ]; then
        echo "- Image: \`$image_tag\` ($image_id), on \`$runtime_image\`${image_glibc:+ ($image_glibc)}, created $created;"
        echo "  \`gunzip -c $image_file | docker load\`"
    fi
    [ -z "$sbom_file" ] || echo "- SBOM: $sbom_file (CycloneDX 1.5 JSON)"
    echo "- Checksums: SHA256SUMS (\`sha256sum -c SHA256SUMS\`)"
    if [ -n "$changes" ]; then
        echo
        echo "## Changes"
        printf '%s\n' "$changes"
    fi
} >"$partial/RELEASE-NOTES.md"

(cd "$partial" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort |
    xargs sha256sum >"$tmp/SHA256SUMS")
mv "$tmp/SHA256SUMS" "$partial/SHA256SUMS"
chmod 755 "$partial"
[ ! -e "$dest" ] || rm -rf "$dest"
mv "$partial" "$dest"

echo
echo "release: dcr-shim $version in $dest ($(since "$t_start")):"
(cd "$dest" && stat -c '  %10s  %n' -- *)
echo "release: minimum glibc: ${glibc:-none (static)}"
