#!/usr/bin/env bash
# Issue 22's guardrail: GetCode("64483") over TLS with a bearer token (checked
# against an --auth-policy) >= 0.8 x the same over plain text, on connections
# kept open (h2load opens its connections once per run), the median of ROUNDS
# rounds that alternate the two servers so that drift hits both alike.
#
# Usage: bash benches/tls_ratio.sh
# Settings (environment): ROUNDS (5), REQUESTS per h2load run (200000),
#   CONNECTIONS (4), STREAMS per connection (32), RUN_TIMEOUT seconds (120),
#   CPTD_BIN (default target/release/cptd, built when missing).
# Needs h2load and nghttp (Debian: nghttp2-client), openssl and python3. Both
# servers run with RUST_LOG=warn; every call of every run must answer the
# full GetCode message (its DATA bytes are checked).
set -euo pipefail

cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
requests="${REQUESTS:-200000}"
connections="${CONNECTIONS:-4}"
streams="${STREAMS:-32}"
run_timeout="${RUN_TIMEOUT:-120}"

source benches/common.sh
require_tools tls_ratio h2load nghttp openssl python3
binary="$(release_binary)"

work="$(mktemp -d)"
pids=()
trap 'for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait; rm -rf "$work"' EXIT

(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile server.ext
) >"$work/openssl.log" 2>&1
token="bench-token"
printf '[[caller]]\nname = "bench"\nroles = ["reader"]\ntoken_sha256 = "%s"\n' \
    "$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" >"$work/policy.toml"

plain="$(free_address)"
RUST_LOG=warn "$binary" --listen "$plain" --in-memory >"$work/plain.log" 2>&1 &
pids+=($!)
plain_pid=$!
secure="$(free_address)"
RUST_LOG=warn "$binary" --listen "$secure" --in-memory --tls-cert "$work/server.pem" \
    --tls-key "$work/server.key" --auth-policy "$work/policy.toml" >"$work/tls.log" 2>&1 &
pids+=($!)
secure_pid=$!
sleep 1

grpc_frame "0a053634343833" "$work/get_code.bin"
method=cpt.v1.CodeLookup/GetCode
expected="$(grpc_answer_bytes tls_ratio "$plain" "$method" "$work/get_code.bin")"

# CPU time a server process has used so far, in clock ticks (user + system).
ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
ticks_per_second="$(getconf CLK_TCK)"

# Runs h2load against URL, served by process PID; prints requests per second
# and the server's CPU microseconds per call. Fails unless every call got the
# whole answer.
load() {
    local url="$1" pid="$2" count="${3:-$requests}" output before after
    before="$(ticks "$pid")"
    output="$(timeout "$run_timeout" h2load -n "$count" -c "$connections" -m "$streams" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        -H "authorization: Bearer $token" -d "$work/get_code.bin" "$url")" || {
        echo "tls_ratio: h2load failed on $url" >&2
        echo "$output" >&2
        exit 1
    }
    after="$(ticks "$pid")"
    python3 -c '
import re, sys
output, count, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def number(pattern):
    found = re.search(pattern, output)
    if not found:
        sys.exit(f"tls_ratio: no {pattern!r} in h2load output:\n{output}")
    return float(found.group(1))
if number(r"(\d+) 2xx") != count or number(r"\((\d+)\) data") != count * expected:
    sys.exit(f"tls_ratio: not every call answered the whole message:\n{output}")
rate = number(r"finished in [0-9.]+m?s, ([0-9.]+) req/s")
cpu_us = (int(sys.argv[5]) - int(sys.argv[4])) / int(sys.argv[6]) / count * 1e6
print(f"{rate:.0f} {cpu_us:.1f}")
' "$output" "$count" "$expected" "$before" "$after" "$ticks_per_second"
}

echo "h2load -n $requests -c $connections -m $streams -t 1, $(nproc) CPUs, $rounds rounds, GetCode, RUST_LOG=warn"
load "http://$plain/$method" "$plain_pid" 20000 >/dev/null
load "https://$secure/$method" "$secure_pid" 20000 >/dev/null
ratios=()
printf '%-6s %12s %12s %8s %10s %10s\n' round plain/s tls+token/s ratio plain_us tls_us
for round in $(seq 1 "$rounds"); do
    read -r plain_rate plain_cpu < <(load "http://$plain/$method" "$plain_pid")
    read -r secure_rate secure_cpu < <(load "https://$secure/$method" "$secure_pid")
    ratios+=("$(python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "$secure_rate" "$plain_rate")")
    printf '%-6s %12s %12s %8s %10s %10s\n' "$round" "$plain_rate" "$secure_rate" "${ratios[-1]}" \
        "$plain_cpu" "$secure_cpu"
done
median="$(python3 -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "${ratios[@]}")"
echo "(plain_us, tls_us: server CPU microseconds per call; h2load's own TLS work shares the same CPUs)"
echo "GetCode over TLS with a token / plain text, median of $rounds rounds: $median (guardrail >= 0.8: $(python3 -c 'import sys; print("met" if float(sys.argv[1]) >= 0.8 else "NOT met")' "$median"))"
