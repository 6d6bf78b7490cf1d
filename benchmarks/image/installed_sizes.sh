#!/usr/bin/env bash
# Installed size of the runtime distributions (core + every plugin, no extras) against the same with the
# plugins' `sandbox` extras (moto's S3 server and what it pulls): du of site-packages of two fresh
# virtualenvs, each with pip and setuptools removed so only what the distributions pull is counted.
# Runtime pins come from constraints.txt; the sandbox extras are not pinned and come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -c --exclude=__pycache__ --exclude='*.egg-info' --exclude=./plugins/*/build --exclude=./plugins/*/tests \
  ./pyproject.toml ./README.md ./kibertas_async ./plugins | tar -x -C "$work"
python=${PYTHON:-python3}
measure() { # NAME PIP-ARGS...
  local venv=$work/$1
  shift
  "$python" -m venv "$venv"
  (cd "$work" && "$venv/bin/python" -m pip install --quiet "$@") 2>"$work/pip.log" || { cat "$work/pip.log" >&2; exit 1; }
  "$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools >/dev/null 2>&1 || true
  local site
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%-8s %5d MB  %3d distributions\n' "$(basename "$venv")" $(($(du -sk "$site" | cut -f1) / 1024)) \
    "$(find "$site" -maxdepth 1 -name '*.dist-info' | wc -l)"
}
plugins=(plugins/*/)
sandbox=()
for plugin in "${plugins[@]}"; do
  plugin=${plugin%/}
  if grep -q '^sandbox = \[' "$work/$plugin/pyproject.toml"; then sandbox+=("./$plugin[sandbox]"); else sandbox+=("./$plugin"); fi
done
measure runtime --constraint "$PWD/constraints.txt" . "${plugins[@]/#/./}"
measure sandbox . "${sandbox[@]}"
