#!/usr/bin/env bash
# CI: a bounded schemathesis pass over the simulator's own OpenAPI document.
#
# Starts `shipper-sim serve` on a free 127.0.0.1 port, seeds one B2C and one
# B2B order (the document's examples, so the detail and list answers are
# checked too), then lets schemathesis try every operation: at most
# 30 examples each, a fixed seed, and a hard cap on the whole run. Exits
# non-zero on any 5xx, any status the document does not list, or any body
# that does not match the document.
#
# POST /_sim/faults is left out: a fault answers whatever status it is told
# to, on purpose. So is removing a client: the run would take the demo
# client away from under itself. Set VENV to use another virtualenv than .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
bin() {
  if [ -x "$venv/bin/$1" ]; then readlink -f "$venv/bin/$1"; else command -v "$1"; fi
}
sim=$(bin shipper-sim)
st=$(bin st)
python=$(bin python3)

port=$("$python" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
log=$(mktemp -t shipper-sim-schemathesis.XXXXXX.log)
work=$(mktemp -d)

"$sim" serve --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

up=""
for _ in $(seq 1 50); do
  curl -fsS "$base/_sim/health" >/dev/null 2>&1 && { up=1; break; }
  sleep 0.2
done
[ -n "$up" ] || { echo "shipper-sim did not start:"; cat "$log"; exit 1; }

# Seed: the document's own create examples, one order moved to SHIPPED.
curl -fsS "$base/_sim/openapi.json" -o "$work/openapi.json"
"$python" - "$work/openapi.json" "$base" <<'PY'
import json, sys, urllib.request

document, base = json.load(open(sys.argv[1])), sys.argv[2]

def call(method, path, body, headers=None):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, (path, response.status)

key = {"x-api-key": "demo-key-toko-contoh"}
for kind in ("oms", "wms"):
    path = f"/v3/fulfillment/outbound/{kind}"
    example = document["paths"][path]["post"]["requestBody"]["content"]
    call("POST", path, example["application/json"]["example"], key)
wms = document["paths"]["/v3/fulfillment/outbound/wms"]["post"]["requestBody"]
doc_no = wms["content"]["application/json"]["example"]["doc_no"]
call("POST", f"/_sim/orders/WH-TGR04/{doc_no}/advance", {"to": "SHIPPED"})
PY

# Webhooks must go nowhere but loopback: every webhook_url schemathesis
# sends becomes a closed port on 127.0.0.1 (a string stays a string, so the
# field's other checks still run).
cat >"$work/loopback_webhooks.py" <<'PY'
import schemathesis

LOOPBACK = "http://127.0.0.1:9/schemathesis"


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if isinstance(case.body, dict) and isinstance(case.body.get("webhook_url"), str):
        case.body["webhook_url"] = LOOPBACK if case.body["webhook_url"] else ""
PY

started=$(date +%s)
status=0
(cd "$work" && PYTHONPATH="$work" SCHEMATHESIS_HOOKS=loopback_webhooks \
  timeout 240 "$st" run "$base/_sim/openapi.json" \
  --header "x-api-key: demo-key-toko-contoh" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples 30 \
  --seed 20221 \
  --exclude-path-regex '^/_sim/faults' \
  --exclude-method DELETE \
  --generation-database none \
  --request-timeout 10 \
  --workers 2 \
  --no-color) || status=$?
echo "schemathesis: exit $status after $(( $(date +%s) - started ))s"

# The hook above worked: no client has a webhook URL off this machine.
curl -fsS "$base/_sim/clients" | "$python" -c '
import json, sys
urls = {c.get("webhook_url", "") for c in json.load(sys.stdin)["clients"]}
stray = sorted(u for u in urls if u and not u.startswith("http://127.0.0.1:"))
if stray:
    sys.exit(f"webhook URLs off loopback were stored: {stray}")
' || status=1

if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "schemathesis ran past its 240 s cap"
  echo "--- last lines of the simulator's log ($log):"
  tail -n 40 "$log"
fi
exit "$status"
