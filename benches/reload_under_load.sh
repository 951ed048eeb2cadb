#!/usr/bin/env bash
# How long a SIGHUP reload of a large code set takes while the server is busy,
# and what callers see meanwhile.
#
# Usage: bash benches/reload_under_load.sh
# Settings (environment): ROWS in the generated code file (default 200000),
#   SECONDS_OF_LOAD per h2load run (default 12), RELOADS during the busy run
#   (default 3), CPTD_BIN (default target/release/cptd, built when missing).
#
# It writes a synthetic code file of ROWS codes, starts the release server with
# `--codes` on it, then
#   1. runs h2load on GetCode for SECONDS_OF_LOAD seconds with nothing else
#      happening (the baseline), and
#   2. runs the same load again while sending RELOADS SIGHUPs, one after the
#      other (each after the previous one's "code set reloaded" line),
# and reports each reload's time from the server's own log, the throughput and
# h2load's mean and longest request time in both runs, and checks that every
# request of both runs succeeded with the full answer. Needs h2load and nghttp
# (Debian: nghttp2-client), grpcurl and python3.
set -euo pipefail

cd "$(dirname "$0")/.."

rows="${ROWS:-200000}"
seconds="${SECONDS_OF_LOAD:-12}"
reloads="${RELOADS:-3}"

source benches/common.sh
require_tools reload_under_load h2load nghttp grpcurl python3
binary="$(release_binary)"

work="$(mktemp -d)"
server_pid=""
trap '[[ -n "$server_pid" ]] && kill -TERM "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# Codes 00000-99999, then Category II and III, then HCPCS letters, each with a
# descriptor built from procedure, target and detail phrases, hierarchy,
# anatomy and two synonyms: the shape of a licensed set.
python3 - "$rows" "$work/codes.csv" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
verbs = ["Injection of", "Destruction by neurolytic agent of", "Aspiration and injection of",
         "Percutaneous placement of electrodes near", "Radiofrequency ablation of",
         "Chemodenervation of", "Imaging-guided block of", "Removal or revision of a device near"]
targets = ["the lumbar facet joint nerves", "the cervical epidural space",
           "a major joint such as the knee or shoulder", "the sacroiliac joint",
           "the genicular nerves of the knee", "the greater occipital nerve", "the stellate ganglion",
           "the thoracic paravertebral space", "one or two trigger-point muscles",
           "the basivertebral nerve of a vertebral body"]
details = ["at a single level", "at each additional level, listed separately",
           "with fluoroscopic or CT guidance included", "with ultrasound guidance and images recorded",
           "on one side", "on both sides", "by continuous infusion through a catheter",
           "including any imaging performed"]
anatomy = ["lumbar spine", "cervical spine", "major joint", "sacroiliac joint", "peripheral nerve",
           "thoracic wall"]
def code(index):
    if index < 100_000:
        return f"{index:05}"
    if index < 110_000:
        return f"{index - 100_000:04}F"
    if index < 120_000:
        return f"{index - 110_000:04}T"
    rest = index - 120_000
    return f"{chr(ord('A') + rest // 10_000)}{rest % 10_000:04}"
with open(path, "w") as out:
    out.write("code,descriptor,short_name,section,subsection,heading,anatomy,imaging,synonyms\n")
    for i in range(rows):
        out.write(f'{code(i)},"{verbs[i % 8]} {targets[(i // 7) % 10]}, {details[(i // 3) % 8]}, '
                  f'variant {i}.",Synthetic code {i},Surgery,Nervous System,Heading {i % 97},'
                  f'{anatomy[i % 6]},any,synthetic {i}|code {i % 13}\n')
PY

address="$(free_address)"
log="$work/server.log"
RUST_LOG=warn,cptd::server=info "$binary" --listen "$address" --in-memory --log-format json \
    --codes "$work/codes.csv" >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    grpcurl -plaintext -max-time 1 "$address" grpc.health.v1.Health/Check >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || {
        cat "$log" >&2
        exit 1
    }
    sleep 0.2
done

# The question every call asks: GetCode for 00042, a code of the file at any size.
grpc_frame "0a05$(printf '00042' | od -An -tx1 | tr -d ' \n')" "$work/get_code.bin"
grpcurl -plaintext -d '{"code": "00042"}' "$address" cpt.v1.CodeLookup/GetCode |
    python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["descriptor"].endswith("variant 42."), d'
answer_bytes="$(grpc_answer_bytes reload_under_load "$address" cpt.v1.CodeLookup/GetCode "$work/get_code.bin")"

# Milliseconds of each log line with `message`, in order.
logged_ms() {
    python3 - "$log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    fields = entry.get("fields", entry)
    if fields.get("message") == sys.argv[2]:
        print(fields.get("elapsed_ms"))
PY
}

load() {
    h2load -D "$seconds" -c 4 -m 32 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
        -d "$work/get_code.bin" "http://$address/cpt.v1.CodeLookup/GetCode"
}

summary() {
    python3 -c '
import re, sys
output = sys.argv[1]
def find(pattern):
    found = re.search(pattern, output)
    if not found:
        sys.exit(f"reload_under_load: no {pattern!r} in h2load output:\n{output}")
    return found
done, succeeded = int(find(r"(\d+) done")[1]), int(find(r"(\d+) succeeded")[1])
if succeeded != done:
    sys.exit(f"reload_under_load: only {succeeded} of {done} requests succeeded:\n{output}")
data, expected = int(find(r"\((\d+)\) data")[1]), done * int(sys.argv[2])
if data != expected:
    sys.exit(f"reload_under_load: {data} response data bytes, expected {expected}; "
             f"some calls did not answer the code:\n{output}")
rate = find(r"finished in [0-9.]+m?s, ([0-9.]+) req/s")[1]
times = find(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)")
print(f"{done} calls, all answered the code, {float(rate):.0f}/s, request time mean {times[3]}, longest {times[2]}")
' "$1" "$answer_bytes"
}

echo "code set: $rows generated rows over the built-in set; $(nproc) CPUs; h2load -c 4 -m 32 for ${seconds} s"
echo "start-up build: $(logged_ms 'code registry built') ms"
echo "baseline (no reload): $(summary "$(load)")"

load >"$work/busy.txt" &
load_pid=$!
sleep 1
for reload in $(seq 1 "$reloads"); do
    kill -HUP "$server_pid"
    until [[ "$(logged_ms 'code set reloaded' | wc -l)" -ge "$reload" ]]; do
        sleep 0.05
    done
done
wait "$load_pid"
echo "reload times under load: $(logged_ms 'code set reloaded' | tr '\n' ' ')ms"
echo "during reloads: $(summary "$(cat "$work/busy.txt")")"
