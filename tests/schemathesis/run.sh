#!/usr/bin/env bash
# Schemathesis against a running `berth serve`:
#   hub        /hub/api  with JupyterHub's spec (jupyterhub-rest-api.yml, quirks fixed by hooks.py),
#              only the operations berth implements
#   v1         /api/v1   with berth's own spec (docs/openapi.json)
#   *-tokdel   token deletion, alone and last: a fuzzer that can list tokens can
#              delete the very token it runs with, which would turn the rest into 401s
#
# Usage: tests/schemathesis/run.sh [BASE_URL [TOKEN]]
#   BASE_URL  berth's root URL, e.g. http://127.0.0.1:8000   (or env BERTH_URL)
#   TOKEN     an API token of an admin with all scopes       (or env BERTH_TOKEN)
# Environment (all optional):
#   ST_SUITES        suites to run, in order (default: "hub v1 v1-tokdel";
#                    with ST_HUB_EXTRA=1: "hub hub-tokdel v1 v1-tokdel")
#   ST_HUB_EXTRA=1   also test the /hub/api operations that are about to land
#                    (users create/patch/delete, tokens, groups)
#   ST_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   ST_SEED          hypothesis seed (default 1; "random" for none)
#   ST_WORKERS       concurrent workers (default 1: with more, this machine's Python 3.11.7 now
#                    and then fails a suite with "SystemError: AST constructor recursion
#                    depth mismatch" inside hypothesis, a CPython bug; 1 is as fast here)
#   ST_TIMEOUT       seconds per suite before it counts as failed (default 300)
#   ST_REPORT_DIR    where junit/ndjson reports go (default: a new temp dir)
#   ST_VENV          venv with schemathesis (default /opt/berth/schemathesis; made
#                    from scripts/schemathesis-requirements.txt when missing)
#   ST_POSITIVE_ACCEPTANCE_V1=1  also run positive_data_acceptance on /api/v1
#                    (fails until docs/openapi.json states berth's validation limits)
#   ST_EXTRA_ARGS    more arguments for every `schemathesis run`
# Exit status: 0 when every suite passed, 1 when any failed, 2 on usage errors.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

BASE_URL=${1:-${BERTH_URL:-}}
TOKEN=${2:-${BERTH_TOKEN:-}}
if [[ -z $BASE_URL || -z $TOKEN ]]; then
    echo "usage: $0 BASE_URL TOKEN   (or BERTH_URL / BERTH_TOKEN in the environment)" >&2
    exit 2
fi
BASE_URL=${BASE_URL%/}

VENV=${ST_VENV:-/opt/berth/schemathesis}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-100}
SEED=${ST_SEED:-1}
WORKERS=${ST_WORKERS:-1}
SUITE_TIMEOUT=${ST_TIMEOUT:-300}
HUB_EXTRA=${ST_HUB_EXTRA:-0}
if [[ $HUB_EXTRA == 1 ]]; then
    SUITES=${ST_SUITES:-hub hub-tokdel v1 v1-tokdel}
else
    SUITES=${ST_SUITES:-hub v1 v1-tokdel}
fi
REPORT_DIR=${ST_REPORT_DIR:-$(mktemp -d -t berth-schemathesis.XXXXXX)}
mkdir -p "$REPORT_DIR"
read -r -a EXTRA_ARGS <<<"${ST_EXTRA_ARGS:-}"

if [[ ! -x $VENV/bin/schemathesis ]]; then
    echo "schemathesis: creating $VENV from scripts/schemathesis-requirements.txt" >&2
    /usr/bin/python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install --quiet --no-deps -r "$ROOT/scripts/schemathesis-requirements.txt" ||
        { echo "schemathesis: could not install into $VENV" >&2; exit 1; }
fi
ST=$VENV/bin/schemathesis

# /hub/api operations berth implements (operationIds of jupyterhub-rest-api.yml).
HUB_OPS='get-api|get-info|get-current-user|get-users|get-user|post-user-activity|post-user-server|delete-user-server|post-user-server-name|delete-user-server-name'
# ... and those about to land; on with ST_HUB_EXTRA=1. delete-user-token runs in hub-tokdel.
HUB_OPS_EXTRA='post-users|post-user|patch-user|delete-user|get-user-tokens|post-user-tokens|get-user-token|get-groups|get-group|post-group|delete-group|post-group-users|delete-group-users|get-shares-owner|get-shares-server|post-shares-server|patch-shares-server|delete-shares-server|get-user-shared'
if [[ $HUB_EXTRA == 1 ]]; then
    HUB_OPS="$HUB_OPS|$HUB_OPS_EXTRA"
fi

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# On /hub/api, hooks.py documents JupyterHub's own 400/404/409 for every operation,
# so status_code_conformance no longer sees a valid request refused with 400:
# positive_data_acceptance does (schema-valid input must get 2xx/401/403/404/409).
HUB_CHECKS=$CHECKS,positive_data_acceptance
V1_CHECKS=$CHECKS
if [[ ${ST_POSITIVE_ACCEPTANCE_V1:-0} == 1 ]]; then
    V1_CHECKS=$CHECKS,positive_data_acceptance
fi

# The token's owner, for hooks.py (group members must exist).
ST_HUB_USER=$("$VENV/bin/python" - "$BASE_URL" "$TOKEN" <<'PY' 2>/dev/null
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/hub/api/user", headers={"Authorization": "token " + sys.argv[2]})
print(json.load(urllib.request.urlopen(req, timeout=10))["name"])
PY
) || ST_HUB_USER=
export ST_HUB_USER

# schemathesis keeps .schemathesis/ and .hypothesis/ in its working directory.
WORK=$(mktemp -d -t berth-schemathesis-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

COMMON=(--max-examples "$MAX_EXAMPLES" --workers "$WORKERS" --generation-database none
    --no-color --request-timeout 10 --report junit,ndjson --report-dir "$REPORT_DIR")
if [[ $SEED != random ]]; then
    COMMON+=(--seed "$SEED")
fi

run_suite() {
    local suite=$1
    local args
    case $suite in
    hub)
        args=("$HERE/jupyterhub-rest-api.yml" --url "$BASE_URL/hub/api"
            -H "Authorization: token $TOKEN" --checks "$HUB_CHECKS"
            --include-operation-id-regex "^($HUB_OPS)\$") ;;
    hub-tokdel)
        args=("$HERE/jupyterhub-rest-api.yml" --url "$BASE_URL/hub/api"
            -H "Authorization: token $TOKEN" --checks "$HUB_CHECKS"
            --include-operation-id-regex '^(get-users|get-current-user|post-user-tokens|delete-user-token)$') ;;
    v1)
        # logout only ends cookie sessions; it is excluded so that a session-cookie
        # run (if ever) is not logged out; delete_token runs in v1-tokdel.
        args=("$ROOT/docs/openapi.json" --url "$BASE_URL"
            -H "Authorization: Bearer $TOKEN" --checks "$V1_CHECKS"
            --exclude-operation-id delete_token --exclude-operation-id logout) ;;
    v1-tokdel)
        args=("$ROOT/docs/openapi.json" --url "$BASE_URL"
            -H "Authorization: Bearer $TOKEN" --checks "$V1_CHECKS"
            --include-operation-id-regex '^(list_users|me|create_token|delete_token)$') ;;
    *)
        echo "schemathesis: unknown suite $suite" >&2
        return 2 ;;
    esac
    (cd "$WORK" && PYTHONDONTWRITEBYTECODE=1 SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" \
        timeout "$SUITE_TIMEOUT" "$ST" run "${args[@]}" "${COMMON[@]}" \
        --report-junit-path "$REPORT_DIR/$suite.junit.xml" \
        --report-ndjson-path "$REPORT_DIR/$suite.ndjson" \
        "${EXTRA_ARGS[@]}")
}

declare -A RESULT
failed=0
for suite in $SUITES; do
    echo "===== schemathesis suite: $suite ====="
    log=$REPORT_DIR/$suite.log
    start=$SECONDS
    run_suite "$suite" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    took=$((SECONDS - start))
    # schemathesis closes with e.g. "===== 5 failures, 1 warning in 9.73s ====="
    closing=$(grep -E '^=+ .* in [0-9.]+s =+$' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
    if [[ $rc -eq 0 ]]; then
        RESULT[$suite]="ok      ${took}s  ${closing}"
    else
        [[ $rc -eq 124 ]] && closing="timed out after ${SUITE_TIMEOUT}s"
        RESULT[$suite]="FAILED  ${took}s  rc=$rc  ${closing}"
        failed=1
    fi
done

echo
echo "===== schemathesis summary (reports: $REPORT_DIR) ====="
for suite in $SUITES; do
    printf '  %-11s %s\n' "$suite" "${RESULT[$suite]}"
done
exit $failed
