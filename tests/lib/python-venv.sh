#!/usr/bin/env bash
# Creates (or reuses) a Python venv with the packages of a requirements file, and prints the
# path of its python on stdout (everything else goes to stderr):
#
#   py="$(bash tests/lib/python-venv.sh NAME REQUIREMENTS MODULE)"
#
# NAME: the venv's directory under ${XDG_CACHE_HOME:-$HOME/.cache}/dcr-shim-ci (an absolute
# path is used as it is); REQUIREMENTS: a pip requirements file with pinned versions; MODULE: a
# module the venv must import. The venv is reused while it still matches the requirements, and
# rebuilt otherwise. Debian's python3 lacks venv support until python3-venv is installed: then
# it is installed (as root, or through sudo), like the other test helpers install Debian's
# packages.
set -euo pipefail
name="$1"
req="$2"
module="$3"
case "$name" in
  /*) venv="$name" ;;
  *) venv="${XDG_CACHE_HOME:-$HOME/.cache}/dcr-shim-ci/$name" ;;
esac
python="${PYTHON:-python3}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

usable() {
  [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
    && "$venv/bin/python" -c "import $module" >/dev/null 2>&1
}

if usable; then
  echo "$venv/bin/python"
  exit 0
fi
# One builder at a time (parallel test scripts); the others reuse what it built.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if usable; then
  echo "$venv/bin/python"
  exit 0
fi

apt_install() {
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >&2
}

if ! command -v "$python" >/dev/null 2>&1; then
  echo "$name: $python not found; installing Debian's python3" >&2
  apt_install python3 python3-venv
  python=python3
fi

rm -rf "$venv"
if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
  echo "$name: '$python -m venv' failed; installing Debian's python3-venv" >&2
  rm -rf "$venv"
  apt_install python3-venv
  "$python" -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
"$venv/bin/python" -c "import $module" >&2
echo "$want" > "$stamp"
echo "$name: venv ready: $venv ($("$venv/bin/python" -m pip freeze 2>/dev/null | tr '\n' ' '))" >&2
echo "$venv/bin/python"
