#!/usr/bin/env bash
# Throughput of cpt.v1.CodeLookup/GetCode relative to grpc.health.v1.Health/Check
# on the same release server under the same h2load load. The goal is a ratio of
# at least 0.9: a look-up should cost almost nothing beyond the gRPC stack.
#
# Usage: bash benches/grpc_ratio.sh [--search]
#   --search   also measure SearchCodes("tfesi lumbar") against GetCode
# Settings (environment): ROUNDS (default 5), REQUESTS per run (200000),
#   CONNECTIONS (4), STREAMS per connection (32), RUN_TIMEOUT seconds per h2load
#   run (120), CPTD_BIN (default target/release/cptd, built when missing).
#
# Each round runs Health/Check then GetCode (alternating, so drift on a noisy
# machine hits both alike) against a server started with RUST_LOG=warn, so the
# per-call log line is filtered out; one more round runs against a server at the
# default `info` level writing its request log to a file, to show what logging
# costs. Needs h2load and nghttp (Debian: nghttp2-client), grpcurl and python3.
set -euo pipefail

cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
requests="${REQUESTS:-200000}"
connections="${CONNECTIONS:-4}"
streams="${STREAMS:-32}"
run_timeout="${RUN_TIMEOUT:-120}"
search=""
for argument in "$@"; do
    case "$argument" in
    --search) search=yes ;;
    *)
        echo "usage: $0 [--search]" >&2
        exit 2
        ;;
    esac
done

source benches/common.sh
require_tools grpc_ratio h2load nghttp grpcurl python3
binary="$(release_binary)"

work="$(mktemp -d)"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# HealthCheckRequest{} is empty; GetCodeRequest{code: "64483"} is field 1
# (tag 0x0a), length 5, "64483"; SearchCodesRequest{query: "tfesi lumbar"} is
# field 1, length 12, the text.
grpc_frame "" "$work/health.bin"
grpc_frame "0a053634343833" "$work/get_code.bin"
grpc_frame "0a0c$(printf 'tfesi lumbar' | od -An -tx1 | tr -d ' \n')" "$work/search.bin"

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
    local rust_log="$1"
    address="$(free_address)"
    RUST_LOG="$rust_log" "$binary" --listen "$address" --in-memory >"$work/server-$rust_log.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 50); do
        if grpcurl -plaintext -max-time 1 "$address" "$HEALTH" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "grpc_ratio: the server did not become healthy; its log:" >&2
    cat "$work/server-$rust_log.log" >&2
    exit 1
}

# The exact body h2load sends must get a real answer, not a gRPC error (h2load
# sees only the HTTP status, 200 for both). Sends it once with nghttp, checks
# grpc-status 0, and records the response's DATA length so every h2load run can
# be checked to have received exactly that much per request.
declare -A data_bytes
verify_body() {
    local method="$1"
    local output status length
    output="$(nghttp -v -d "$(body_of "$method")" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://$address/$method" 2>&1 | tr -d '\0')"
    status="$(grep -ao 'grpc-status: [0-9]*' <<<"$output" | head -1 | cut -d' ' -f2)"
    if [[ "$status" != 0 ]]; then
        echo "grpc_ratio: $method with the benchmark body answered grpc-status '${status}', expected 0:" >&2
        grep -a 'recv' <<<"$output" >&2
        exit 1
    fi
    length="$(grep -ao 'recv DATA frame <length=[0-9]*' <<<"$output" | grep -o '[0-9]*$' | awk '{ sum += $1 } END { print sum }')"
    data_bytes["$method"]="$length"
}

# The same questions as JSON through grpcurl, to show what the bodies ask.
grpcurl_cross_check() {
    grpcurl -plaintext -d '{"code": "64483"}' "$address" "$GET_CODE" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["code"] == "64483", d'
    if [[ -n "$search" ]]; then
        grpcurl -plaintext -d '{"query": "tfesi lumbar"}' "$address" "$SEARCH" |
            python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["results"][0]["code"]["code"] == "64483", d'
    fi
}

# CPU time the server has used so far, in clock ticks (user + system).
server_ticks() {
    awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}
ticks_per_second="$(getconf CLK_TCK)"

# Runs h2load against one method; prints its requests per second and the
# server's CPU microseconds per call. Fails unless every request succeeded with
# 2xx and carried the expected response data.
load() {
    local method="$1"
    local count="${2:-$requests}"
    local output ticks_before ticks_after
    ticks_before="$(server_ticks)"
    output="$(timeout "$run_timeout" h2load -n "$count" -c "$connections" -m "$streams" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        -d "$(body_of "$method")" "http://$address/$method")" || {
        echo "grpc_ratio: h2load failed or timed out on $method" >&2
        echo "$output" >&2
        exit 1
    }
    ticks_after="$(server_ticks)"
    python3 -c '
import re, sys
output, count, expected_data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cpu_seconds = (int(sys.argv[5]) - int(sys.argv[4])) / int(sys.argv[6])
def number(pattern):
    found = re.search(pattern, output)
    if not found:
        sys.exit(f"grpc_ratio: no {pattern!r} in h2load output:\n{output}")
    return float(found.group(1))
succeeded = number(r"(\d+) succeeded")
ok = number(r"(\d+) 2xx")
data = number(r"\((\d+)\) data")
if succeeded != count or ok != count:
    sys.exit(f"grpc_ratio: only {succeeded:.0f} succeeded and {ok:.0f} 2xx of {count}:\n{output}")
if data != count * expected_data:
    sys.exit(f"grpc_ratio: {data:.0f} response data bytes, expected {count} x {expected_data}; "
             f"some calls did not answer the message:\n{output}")
rate = number(r"finished in [0-9.]+m?s, ([0-9.]+) req/s")
print(f"{rate:.0f} {cpu_seconds / count * 1e6:.1f}")
' "$output" "$count" "${data_bytes[$method]}" "$ticks_before" "$ticks_after" "$ticks_per_second"
}

median() {
    python3 -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"
}
ratio() {
    python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "$1" "$2"
}

echo "h2load -n $requests -c $connections -m $streams -t 1, $(nproc) CPUs, $rounds rounds"

# ---- RUST_LOG=warn: the gRPC stack and the look-up, without the request log ----

start_server warn
verify_body "$HEALTH"
verify_body "$GET_CODE"
[[ -n "$search" ]] && verify_body "$SEARCH"
grpcurl_cross_check
echo "response DATA bytes per call: Health/Check ${data_bytes[$HEALTH]}, GetCode ${data_bytes[$GET_CODE]}${search:+, SearchCodes ${data_bytes[$SEARCH]}}"

# Warm-up, not reported: connections, allocator and caches settle.
load "$HEALTH" 20000 >/dev/null
load "$GET_CODE" 20000 >/dev/null

# Throughput ratio per round, and the ratio of server CPU per call (Health's
# over GetCode's: what the throughput ratio would be if the server had its
# cores to itself; on a shared machine it is the steadier figure).
ratios=()
cpu_ratios=()
search_ratios=()
printf '%-6s %10s %10s %7s %12s %12s %7s' round health/s get_code/s ratio health_cpu_us get_cpu_us cpu
[[ -n "$search" ]] && printf ' %10s %10s %7s' search/s search_cpu s/g
printf '\n'
for round in $(seq 1 "$rounds"); do
    read -r health health_cpu < <(load "$HEALTH")
    read -r get_code get_code_cpu < <(load "$GET_CODE")
    ratios+=("$(ratio "$get_code" "$health")")
    cpu_ratios+=("$(ratio "$health_cpu" "$get_code_cpu")")
    printf '%-6s %10s %10s %7s %12s %12s %7s' "$round" "$health" "$get_code" "${ratios[-1]}" \
        "$health_cpu" "$get_code_cpu" "${cpu_ratios[-1]}"
    if [[ -n "$search" ]]; then
        read -r searches search_cpu < <(load "$SEARCH" "$((requests / 10))")
        search_ratios+=("$(ratio "$searches" "$get_code")")
        printf ' %10s %10s %7s' "$searches" "$search_cpu" "${search_ratios[-1]}"
    fi
    printf '\n'
done
echo "median GetCode/Health throughput ratio (RUST_LOG=warn): $(median "${ratios[@]}")"
echo "median Health/GetCode server CPU per call ratio (RUST_LOG=warn): $(median "${cpu_ratios[@]}")"
[[ -n "$search" ]] && echo "median SearchCodes/GetCode throughput ratio (RUST_LOG=warn): $(median "${search_ratios[@]}")"
stop_server

# ---- default logging: one info line per call, written to a file ----

start_server info
verify_body "$HEALTH"
verify_body "$GET_CODE"
load "$HEALTH" 20000 >/dev/null
load "$GET_CODE" 20000 >/dev/null
read -r health health_cpu < <(load "$HEALTH")
read -r get_code get_code_cpu < <(load "$GET_CODE")
echo "default info logging, one round: health/s $health (cpu ${health_cpu} us/call), get_code/s $get_code (cpu ${get_code_cpu} us/call), ratio $(ratio "$get_code" "$health")"
stop_server
