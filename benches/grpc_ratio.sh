#!/usr/bin/env bash
# Guardrails 1 and 3 of issue 19, on one release server under one h2load load:
#   GetCode("64483") throughput >= 0.8 x grpc.health.v1.Health/Check's, and
#   SearchCodes{query: "lumbar facet inj", page_size: 10} (the last word typed
#   as a prefix) >= 0.5 x GetCode's;
# each the median of ROUNDS rounds that alternate Health, GetCode and SearchCodes,
# so that drift on a noisy machine hits all three alike. The built-in code set
# has six matches for "lumbar facet inj", so that page holds six results;
# SEARCH_QUERY="facet inj" is a query of the same kind whose first page is full
# (ten of twelve).
#
# Usage: bash benches/grpc_ratio.sh
# Settings (environment): ROUNDS (default 5), REQUESTS per h2load run (200000),
#   CONNECTIONS (4), STREAMS per connection (32), RUN_TIMEOUT seconds per h2load
#   run (120), SEARCH_QUERY (default "lumbar facet inj"), CPTD_BIN (default
#   target/release/cptd, built when missing).
#
# The server runs with RUST_LOG=warn, so the per-call log line is off and the
# ratios compare the work of the calls themselves. Every h2load run must have
# every call succeed with exactly the response bytes of a real answer. Needs
# h2load and nghttp (Debian: nghttp2-client), grpcurl and python3.
set -euo pipefail

cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
requests="${REQUESTS:-200000}"
connections="${CONNECTIONS:-4}"
streams="${STREAMS:-32}"
run_timeout="${RUN_TIMEOUT:-120}"
search_query="${SEARCH_QUERY:-lumbar facet inj}"
if [[ $# -gt 0 ]]; then
    echo "usage: $0 (settings in the environment)" >&2
    exit 2
fi

source benches/common.sh
require_tools grpc_ratio h2load nghttp grpcurl python3
binary="$(release_binary)"

work="$(mktemp -d)"
trap 'stop_server; rm -rf "$work"' EXIT

# HealthCheckRequest{} is empty; GetCodeRequest{code: "64483"} is field 1
# (tag 0x0a), length 5, "64483"; SearchCodesRequest{query, page_size: 10} is
# field 1, the query's length (one byte, under 128) and text, then field 3
# (tag 0x18) as the varint 10.
grpc_frame "" "$work/health.bin"
grpc_frame "0a053634343833" "$work/get_code.bin"
search_hex="$(python3 -c '
import sys
query = sys.argv[1].encode()
assert len(query) < 128, "SEARCH_QUERY must be under 128 bytes"
print((b"\x0a" + bytes([len(query)]) + query + b"\x18\x0a").hex())' "$search_query")"
grpc_frame "$search_hex" "$work/search.bin"

HEALTH=grpc.health.v1.Health/Check
GET_CODE=cpt.v1.CodeLookup/GetCode
SEARCH=cpt.v1.CodeLookup/SearchCodes
body_of() {
    case "$1" in
    "$HEALTH") echo "$work/health.bin" ;;
    "$GET_CODE") echo "$work/get_code.bin" ;;
    "$SEARCH") echo "$work/search.bin" ;;
    esac
}

address=""
start_server() {
    address="$(free_address)"
    RUST_LOG=warn "$binary" --listen "$address" --in-memory >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 50); do
        if grpcurl -plaintext -max-time 1 "$address" "$HEALTH" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "grpc_ratio: the server did not become healthy; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
}

# The response DATA bytes of each method's answer, which every h2load run must
# receive per call.
declare -A data_bytes
verify_body() {
    data_bytes["$1"]="$(grpc_answer_bytes grpc_ratio "$address" "$1" "$(body_of "$1")")"
}

# The same questions as JSON through grpcurl, to show what the bodies ask;
# prints how many results the search's page holds, of how many, and its first
# codes.
grpcurl_cross_check() {
    grpcurl -plaintext -d '{"code": "64483"}' "$address" "$GET_CODE" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["code"] == "64483", d'
    grpcurl -plaintext -d "{\"query\": \"$search_query\", \"page_size\": 10}" "$address" "$SEARCH" |
        python3 -c '
import json, sys
answer = json.load(sys.stdin)
results, total = answer.get("results", []), answer.get("totalSize", 0)
assert results and len(results) == min(10, total), answer
print(f"{len(results)} results of {total}, first", " ".join(r["code"]["code"] for r in results[:3]))'
}

# Runs h2load against one method; prints its requests per second and the
# server's CPU microseconds per call. Fails unless every request succeeded with
# 2xx and carried the expected response data.
load() {
    local method="$1"
    local count="${2:-$requests}"
    h2load_run grpc_ratio "$address" "$method" "$(body_of "$method")" "$count" \
        "${data_bytes[$method]}" "$server_pid"
}

echo "h2load -n $requests -c $connections -m $streams -t 1, $(nproc) CPUs, $rounds rounds, RUST_LOG=warn"

start_server
verify_body "$HEALTH"
verify_body "$GET_CODE"
verify_body "$SEARCH"
search_page="$(grpcurl_cross_check)"
echo "SearchCodes {query: \"$search_query\", page_size: 10} answers $search_page"
echo "response DATA bytes per call: Health/Check ${data_bytes[$HEALTH]}, GetCode ${data_bytes[$GET_CODE]}, SearchCodes ${data_bytes[$SEARCH]}"

# Warm-up, not reported: connections, allocator and caches settle.
load "$HEALTH" 20000 >/dev/null
load "$GET_CODE" 20000 >/dev/null
load "$SEARCH" 20000 >/dev/null

# Throughput per round, and the server's CPU per call, which moves less than
# throughput with the machine's other load.
get_code_ratios=()
search_ratios=()
printf '%-6s %10s %10s %10s %9s %9s %9s %10s %10s\n' round health/s get_code/s search/s health_us get_us search_us get/health search/get
for round in $(seq 1 "$rounds"); do
    read -r health health_cpu < <(load "$HEALTH")
    read -r get_code get_code_cpu < <(load "$GET_CODE")
    read -r searches search_cpu < <(load "$SEARCH")
    get_code_ratios+=("$(ratio "$get_code" "$health")")
    search_ratios+=("$(ratio "$searches" "$get_code")")
    printf '%-6s %10s %10s %10s %9s %9s %9s %10s %10s\n' "$round" "$health" "$get_code" "$searches" \
        "$health_cpu" "$get_code_cpu" "$search_cpu" "${get_code_ratios[-1]}" "${search_ratios[-1]}"
done
stop_server
echo "(health_us, get_us, search_us: server CPU microseconds per call)"

get_code_median="$(median "${get_code_ratios[@]}")"
search_median="$(median "${search_ratios[@]}")"
echo "GetCode / Health/Check throughput, median of $rounds rounds: $get_code_median (guardrail >= 0.8: $(verdict "$get_code_median" 0.8))"
echo "SearchCodes \"$search_query\" / GetCode throughput, median of $rounds rounds: $search_median (guardrail >= 0.5: $(verdict "$search_median" 0.5))"
