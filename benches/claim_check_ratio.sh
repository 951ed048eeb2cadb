#!/usr/bin/env bash
# Issue 21's figures for CheckClaim with a full quarter of NCCI pairs loaded:
#   1. the full-size load: a generated practitioner PTP file of ROWS rows
#      (2.5 million, a real quarter) in CMS's published layout, loaded by
#      `cptd check --ncci-ptp` under /usr/bin/time: wall time and peak
#      resident memory (the goal: < 5 s and < 300 MB);
#   2. CheckClaim of a ten-line pain-management claim >= 0.5 x GetCode("64483")
#      throughput, one release server started with that file, under one
#      h2load load; the median of ROUNDS rounds alternating the two methods.
# The in-process p99 is `cargo bench --bench claim_check`.
#
# Usage: bash benches/claim_check_ratio.sh
# Settings (environment): ROWS (default 2500000), ROUNDS (5), REQUESTS per
#   h2load run (100000), CONNECTIONS (4), STREAMS per connection (32),
#   RUN_TIMEOUT seconds per h2load run (120), CPTD_BIN (default
#   target/release/cptd, built when missing).
# Needs h2load and nghttp (Debian: nghttp2-client), grpcurl, python3 and
# GNU time (/usr/bin/time).
set -euo pipefail

cd "$(dirname "$0")/.."

rows="${ROWS:-2500000}"
rounds="${ROUNDS:-5}"
requests="${REQUESTS:-100000}"
connections="${CONNECTIONS:-4}"
streams="${STREAMS:-32}"
run_timeout="${RUN_TIMEOUT:-120}"
if [[ $# -gt 0 ]]; then
    echo "usage: $0 (settings in the environment)" >&2
    exit 2
fi

source benches/common.sh
require_tools claim_check_ratio h2load nghttp grpcurl python3 /usr/bin/time
binary="$(release_binary)"

work="$(mktemp -d)"
trap 'stop_server; rm -rf "$work"' EXIT

# The extract's real pairs in CMS's layout, then synthetic pairs of codes the
# claim does not use (25,000 column-1 codes with 100 column-2 codes each), as
# benches/claim_check.rs writes them.
ptp="$work/ccipra-v999r0-f1.txt"
python3 - "$ptp" "$rows" <<'PYTHON'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
rationales = ["Misuse of Column Two code with Column One code",
              "Standards of medical/surgical practice",
              "CPT Manual or CMS manual coding instruction",
              "Mutually exclusive procedures",
              "HCPCS/CPT procedure code definition",
              "More extensive procedure"]
with open(path, "w", newline="") as out:
    out.write("CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t\r\n"
              "Column1/Column2 Edits\t\t\t\t\t\t\r\n"
              "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n"
              "\t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n"
              "\t\t\t\t*=no data\t1=allowed\t\r\n"
              "\t\t\t\t\t9=not applicable\t\r\n")
    written = 0
    with open("data/cms/ncci-ptp-practitioner-2024q3-pain.csv") as extract:
        next(extract)
        for line in extract:
            c1, c2, deletion, indicator, rationale = line.rstrip("\n").split(",", 4)
            deletion = "*" if deletion == "99991231" else deletion
            out.write(f"{c1}\t{c2}\t*\t19960101\t{deletion}\t{indicator}\t{rationale}\r\n")
            written += 1
    index = 0
    lines = []
    while written < rows:
        c1 = 30000 + index // 100
        c2 = 10000 + (index * 7919) % 50000
        deletion, indicator = {0: ("20191231", "1"), 9: ("20220101", "9")}.get(
            index % 10, ("*", "0") if 1 <= index % 10 <= 4 else ("*", "1"))
        lines.append(f"{c1}\t{c2}\t\t20150101\t{deletion}\t{indicator}\t{rationales[index % 6]}\r\n")
        if len(lines) == 100000:
            out.writelines(lines)
            lines = []
        written += 1
        index += 1
    out.writelines(lines)
PYTHON
echo "generated $(($(wc -l <"$ptp") - 6)) PTP rows, $(du -m "$ptp" | cut -f1) MB"

# 1. The load, as the server does it, offline.
/usr/bin/time -f '%e %M' -o "$work/time" "$binary" check --ncci-ptp "$ptp" >"$work/check.out"
read -r load_seconds peak_kib <"$work/time"
echo "cptd check --ncci-ptp: $(cat "$work/check.out")"
echo "full-size load: ${load_seconds} s, peak resident memory $((peak_kib / 1024)) MiB (goal: < 5 s, < 300 MB)"

# 2. Throughput. CheckClaimRequest{claim} is field 1 holding the claim, whose
# fields are written here by number, as claim_check.proto numbers them.
python3 - "$work/check_claim.hex" <<'PYTHON'
import sys
def varint(n):
    out = b""
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])
def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload
def number(number, value):
    return varint(number << 3) + varint(value)
def line(code, modifiers, units, pointers):
    body = field(1, code.encode())
    for modifier in modifiers:
        body += field(2, modifier.encode())
    body += number(3, units)
    body += field(4, b"".join(varint(p) for p in pointers))
    return body
claim = field(1, b"2024-08-01") + field(2, b"11") + field(3, b"1234567893") + field(4, b"123456789")
claim += number(5, 61)
for diagnosis in ["M54.16", "M47.816", "C50.911"]:
    claim += field(7, diagnosis.encode())
for code, modifiers, units in [("99214", ["25"], 1), ("64483", ["RT"], 1), ("64484", ["RT"], 2),
                               ("64493", ["LT"], 1), ("64494", ["LT"], 1), ("77003", [], 1),
                               ("20610", ["RT"], 1), ("G2211", [], 1), ("1125F", [], 1),
                               ("0521F", [], 1)]:
    claim += field(8, line(code, modifiers, units, [1, 2]))
open(sys.argv[1], "w").write(field(1, claim).hex())
PYTHON
grpc_frame "$(cat "$work/check_claim.hex")" "$work/check_claim.bin"
grpc_frame "0a053634343833" "$work/get_code.bin"

GET_CODE=cpt.v1.CodeLookup/GetCode
CHECK_CLAIM=cpt.v1.ClaimCheck/CheckClaim
body_of() {
    case "$1" in
    "$GET_CODE") echo "$work/get_code.bin" ;;
    "$CHECK_CLAIM") echo "$work/check_claim.bin" ;;
    esac
}

address="$(free_address)"
RUST_LOG=warn "$binary" --listen "$address" --in-memory --ncci-ptp "$ptp" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
    if grpcurl -plaintext -max-time 1 "$address" grpc.health.v1.Health/Check >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
grpcurl -plaintext -max-time 1 "$address" grpc.health.v1.Health/Check >/dev/null || {
    echo "claim_check_ratio: the server did not become healthy; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
}
echo "server peak resident memory with the file loaded: $(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$server_pid/status") MiB"

declare -A data_bytes
for method in "$GET_CODE" "$CHECK_CLAIM"; do
    data_bytes["$method"]="$(grpc_answer_bytes claim_check_ratio "$address" "$method" "$(body_of "$method")")"
done
findings="$(grpcurl -plaintext -d @ "$address" "$CHECK_CLAIM" <<'JSON' | python3 -c 'import json, sys; d = json.load(sys.stdin); print(len(d.get("findings", [])), "findings:", ", ".join(sorted({f["kind"] for f in d.get("findings", [])})))'
{"claim": {"service_date": "2024-08-01", "place_of_service": "11", "provider_id": "1234567893",
 "tin": "123456789", "patient_age": 61, "diagnoses": ["M54.16", "M47.816", "C50.911"],
 "lines": [{"code": "99214", "modifiers": ["25"], "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "64483", "modifiers": ["RT"], "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "64484", "modifiers": ["RT"], "units": 2, "diagnosis_pointers": [1, 2]},
           {"code": "64493", "modifiers": ["LT"], "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "64494", "modifiers": ["LT"], "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "77003", "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "20610", "modifiers": ["RT"], "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "G2211", "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "1125F", "units": 1, "diagnosis_pointers": [1, 2]},
           {"code": "0521F", "units": 1, "diagnosis_pointers": [1, 2]}]}}
JSON
)"
echo "the ten-line claim answers $findings"
echo "response DATA bytes per call: GetCode ${data_bytes[$GET_CODE]}, CheckClaim ${data_bytes[$CHECK_CLAIM]}"
echo "h2load -n $requests -c $connections -m $streams -t 1, $(nproc) CPUs, $rounds rounds, RUST_LOG=warn"

load() {
    h2load_run claim_check_ratio "$address" "$1" "$(body_of "$1")" "${2:-$requests}" \
        "${data_bytes[$1]}" "$server_pid"
}
load "$GET_CODE" 20000 >/dev/null
load "$CHECK_CLAIM" 20000 >/dev/null

ratios=()
printf '%-6s %10s %12s %9s %11s %12s\n' round get_code/s check_claim/s get_us check_us check/get
for round in $(seq 1 "$rounds"); do
    read -r get_code get_code_cpu < <(load "$GET_CODE")
    read -r checks check_cpu < <(load "$CHECK_CLAIM")
    ratios+=("$(ratio "$checks" "$get_code")")
    printf '%-6s %10s %12s %9s %11s %12s\n' "$round" "$get_code" "$checks" "$get_code_cpu" \
        "$check_cpu" "${ratios[-1]}"
done
stop_server
echo "(get_us, check_us: server CPU microseconds per call)"
check_median="$(median "${ratios[@]}")"
echo "CheckClaim (10 lines) / GetCode throughput, median of $rounds rounds: $check_median (goal >= 0.5: $(verdict "$check_median" 0.5))"
