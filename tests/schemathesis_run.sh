#!/usr/bin/env bash
# Property-based API check: schemathesis against /api/schema/ of a live daphne server
# (embedded SQLite in a temporary directory). Fails on any 5xx or any response that breaks the schema.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-120}
work=$(mktemp -d)
port=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export VAR_DIR="$work" DEBUG=1 DATABASE_URL="sqlite:///$work/db.sqlite3"
unset REDIS_URL
# Generous limits: the fuzzer should reach the handlers, not the throttle.
export THROTTLE_AUTH=100000/min THROTTLE_USER=100000/min THROTTLE_ANON=100000/min
$BIN/python manage.py migrate --noinput -v0
$BIN/python manage.py seed_demo >/dev/null
$BIN/daphne -b 127.0.0.1 -p "$port" imsite.asgi:application >"$work/daphne.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/api/schema/" -o /dev/null 2>/dev/null && break
  sleep 0.1
done
token=$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"alice","password":"demo-pass-123"}' | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["data"]["accessToken"])')
status=0
$BIN/schemathesis run "http://127.0.0.1:$port/api/schema/" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing --max-time "$MAX_TIME" --workers 2 --request-timeout 10 \
  --suppress-health-check all || status=$?
if grep -q "Traceback" "$work/daphne.log"; then
  echo "daphne logged a traceback:"; grep -B2 -A20 "Traceback" "$work/daphne.log" | head -80
  status=1
fi
exit $status
