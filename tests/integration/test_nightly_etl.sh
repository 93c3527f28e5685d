#!/usr/bin/env bash
# tests/integration/test_nightly_etl.sh - the nightly ETL example end to end, on a small
# data set, against the real `sluice serve` (TAP output).
#
#   test_nightly_etl.sh EXTRACT_TRANSFORM_BINARY     (SLUICE_BIN, SLUICE_SRC from meson)
#
# 1. three nights load: every date has its rows in SQLite, and they equal what an
#    independent reading of the partition files gives (lots, distinct blocks, odd/even per
#    street; broken lines counted, not fatal);
# 2. a night without partitions fails through the Catch: the execution FAILED after
#    NotifyFailure, and the webhook target received the etl.failed event;
# 3. the server is SIGKILLed while a night's Map is running and restarted on the same data
#    directory and ports: the night finishes and its rows are right;
# 4. re-loading a night replaces its rows (idempotent by date);
# 5. a second `sluice apply` of the same app changes nothing; the webhook URL's port comes
#    from SLUICE_WEBHOOK_PORT (environment substitution in the app file);
# 6. a worker SIGKILLed in the middle of its tasks: they time out on their heartbeat and the
#    Retry hands them to another worker; the night loads correctly;
# 7. tasks longer than HeartbeatSeconds succeed: the worker library sends heartbeats;
# 8. a loader that fails reaches the Catch (etl.failed at the webhook) and leaves the
#    night's rows from its earlier load as they were.
# Every wait is bounded (hang guards only, no timing assertions).
set -uo pipefail

: "${SLUICE_BIN:?}" "${SLUICE_SRC:?}"
EXTRACT=${1:?usage: test_nightly_etl.sh EXTRACT_TRANSFORM_BINARY}
n=0
failures=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failures=$((failures + 1))
	echo "not ok $n - $1"
	shift
	printf '# %s\n' "$@"
}
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name" "command failed: $*"; fi
}

for tool in sqlite3 python3 curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done

export SLUICE="$SLUICE_BIN" ETL_EXTRACT="$EXTRACT"
ETL_HOME=$(mktemp -d "${TMPDIR:-/tmp}/sluice-etl-test.XXXXXX")
export ETL_HOME
. "$SLUICE_SRC/examples/nightly-etl/etl-lib.sh"
etl_init
cleanup() {
	etl_stop_all >/dev/null 2>&1 || true
	if [ "$failures" -eq 0 ]; then
		rm -rf "$ETL_HOME"
	else
		echo "# kept $ETL_HOME for inspection"
		for f in "$ETL_HOME"/logs/*.log; do
			echo "# --- $f (tail)"
			tail -n 15 "$f" | sed 's/^/# /'
		done
	fi
}
trap cleanup EXIT
export ETL_DATA_DIR="$ETL_HOME/sluice-data"
# The C worker fails every 5th task once with ETL.Transient: the Retry path runs too.
export ETL_FLAKY_EVERY=5

# Compares SQLite's rows for DATE with an independent reading of the partition files.
verify_date() {
	python3 - "$ETL_DATA" "$ETL_DB" "$1" <<'PY'
import glob, json, os, sqlite3, sys
data, db, date = sys.argv[1:4]
want, records, bad = {}, 0, 0
for path in sorted(glob.glob(os.path.join(data, date, "*.jsonl"))):
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line:
            continue
        try:
            p = json.loads(line)["properties"]
            vals = [p[k].strip().upper() for k in ("MAPBLKLOT", "BLOCK_NUM", "LOT_NUM", "STREET", "ODD_EVEN")]
            assert all(vals) and vals[4] in ("O", "E")
        except Exception:
            bad += 1
            continue
        records += 1
        s = want.setdefault(vals[3], [0, set(), 0, 0])
        s[0] += 1
        s[1].add(vals[1])
        s[2 if vals[4] == "O" else 3] += 1
got = {r[0]: r[1:] for r in sqlite3.connect(db).execute(
    "SELECT street, lots, blocks, odd, even FROM street_stats WHERE date = ?", (date,))}
exp = {k: (v[0], len(v[1]), v[2], v[3]) for k, v in want.items()}
load = sqlite3.connect(db).execute("SELECT records, bad FROM loads WHERE date = ?", (date,)).fetchone()
if got != exp or load != (records, bad) or not exp:
    print("# %s: streets expected %d got %d; loads row %r, expected %r" % (
        date, len(exp), len(got), load, (records, bad)))
    for k in sorted(set(exp) | set(got)):
        if exp.get(k) != got.get(k):
            print("#   %s: expected %r got %r" % (k, exp.get(k), got.get(k)))
            break
    sys.exit(1)
PY
}

echo "1..19"

# ---- start: server on free ports, webhook, workers, the app -------------------------------
if ! etl_start_server "$ETL_DATA_DIR" 127.0.0.1:0 tcp://127.0.0.1:0; then
	not_ok "server starts" "see $ETL_HOME/logs/server.log"
	exit 1
fi
ok "server starts (http $ETL_HTTP, workers $ETL_WORKERS)"
etl_start_webhook 0 || exit 1
etl_start_workers
# the app file as shipped: its webhook URL takes the receiver's port from the environment
export SLUICE_WEBHOOK_PORT=$ETL_WEBHOOK_PORT
if out=$(etl_apply "$SLUICE_SRC/examples/nightly-etl/app.yaml" 2>&1); then
	ok "the app applies"
else
	not_ok "the app applies" "$out"
	echo "Bail out! the app did not apply"
	exit 1
fi

# ---- 1. three nights ------------------------------------------------------------------------
nights=(2026-03-01 2026-03-02 2026-03-03)
python3 "$SLUICE_SRC/examples/nightly-etl/gen_data.py" --out "$ETL_DATA" --records 400 \
	--parts 4 --bad 2026-03-02 "${nights[@]}" 2>/dev/null
# through the schedule rule: a backfill of three 02:00 slots, through its InputTransformer
mapfile -t runs < <(ETL_BACKFILL_TO=2026-03-03T03:00:00Z etl_backfill "${nights[@]}")
ends=$(etl_wait 180 "${runs[@]}")
if [ "$(grep -c ' SUCCEEDED$' <<<"$ends")" -eq 3 ]; then
	ok "three nights succeed"
else
	not_ok "three nights succeed" "$ends"
fi
all=0
for d in "${nights[@]}"; do verify_date "$d" || all=1; done
check "SQLite holds each night's per-street rows, equal to an independent count" [ "$all" -eq 0 ]
badn=$(sqlite3 "$ETL_DB" "SELECT bad FROM loads WHERE date = '2026-03-02'")
check "broken lines are counted, not fatal (2026-03-02: $badn)" [ "${badn:-0}" -gt 0 ]
retried=0
for r in "${runs[@]}"; do
	k=$(etl_api states GetExecutionHistory "{\"executionArn\": \"$r\", \"maxResults\": 1000}" |
		etl_json 'sum(1 for e in d["events"] if e["type"] == "ActivityFailed")')
	retried=$((retried + ${k:-0}))
done
check "transient failures were retried (ActivityFailed events: $retried)" [ "$retried" -gt 0 ]

# ---- 4. idempotent by date --------------------------------------------------------------------
before=$(sqlite3 "$ETL_DB" "SELECT count(*), sum(lots) FROM street_stats")
r=$(etl_api states StartExecution "{\"stateMachineArn\": \"arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl\", \"name\": \"t-again\", \"input\": \"{\\\"date\\\": \\\"2026-03-01\\\"}\"}" | etl_json 'd["executionArn"]')
end=$(etl_wait 120 "$r")
after=$(sqlite3 "$ETL_DB" "SELECT count(*), sum(lots) FROM street_stats")
if [ "${end##* }" = SUCCEEDED ] && [ "$before" = "$after" ] && verify_date 2026-03-01; then
	ok "re-loading a night replaces its rows ($after)"
else
	not_ok "re-loading a night replaces its rows" "$end" "before $before after $after"
fi

# ---- 2. a failing night: the Catch and the webhook -------------------------------------------
r=$(etl_api states StartExecution "{\"stateMachineArn\": \"arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl\", \"name\": \"t-missing\", \"input\": \"{\\\"date\\\": \\\"2026-02-28\\\"}\"}" | etl_json 'd["executionArn"]')
end=$(etl_wait 120 "$r")
states=$(etl_api states GetExecutionHistory "{\"executionArn\": \"$r\", \"maxResults\": 1000}" |
	etl_json '",".join(e["stateEnteredEventDetails"]["name"] for e in d["events"] if "stateEnteredEventDetails" in e)')
if [ "${end##* }" = FAILED ] && [[ $states == *NotifyFailure* ]]; then
	ok "a night without partitions fails through the Catch ($states)"
else
	not_ok "a night without partitions fails through the Catch" "$end" "$states"
fi
got=""
for _ in $(seq 150); do
	got=$(grep -h '2026-02-28' "$ETL_WEBHOOK_OUT" 2>/dev/null || true)
	[ -n "$got" ] && break
	sleep 0.2
done
if [[ $got == *ETL.NoPartitions* ]]; then
	ok "the webhook target received etl.failed"
else
	not_ok "the webhook target received etl.failed" "webhook file: $(cat "$ETL_WEBHOOK_OUT" 2>/dev/null)"
fi

for _ in $(seq 150); do
	grep -q '"logGroup":"nightly-etl".*2026-02-28' "$ETL_HOME/logs/server.log" && break
	sleep 0.2
done
if grep -q '"logGroup":"nightly-etl".*2026-02-28' "$ETL_HOME/logs/server.log"; then
	ok "the log target wrote etl.failed to the server log"
else
	not_ok "the log target wrote etl.failed to the server log"
fi

# ---- 3. SIGKILL of the server mid-run, restart, the night finishes ---------------------------
python3 "$SLUICE_SRC/examples/nightly-etl/gen_data.py" --out "$ETL_DATA" --records 400 \
	--parts 6 2026-03-04 2>/dev/null
# slow tasks, so the kill lands while the Map has tasks out
etl_stop_all >/dev/null 2>&1
etl_start_server "$ETL_DATA_DIR" "$ETL_HTTP" "$ETL_WORKERS" || exit 1
etl_start_webhook "$ETL_WEBHOOK_PORT" || exit 1
ETL_SLOW_MS=1500 etl_start_workers
r=$(etl_api states StartExecution "{\"stateMachineArn\": \"arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl\", \"name\": \"t-crash\", \"input\": \"{\\\"date\\\": \\\"2026-03-04\\\"}\"}" | etl_json 'd["executionArn"]')
inmap=""
for _ in $(seq 300); do
	inmap=$(etl_api states GetExecutionHistory "{\"executionArn\": \"$r\", \"maxResults\": 1000}" |
		etl_json 'sum(1 for e in d["events"] if e["type"] == "ActivityStarted")')
	[ "${inmap:-0}" -ge 3 ] && break
	sleep 0.1
done
etl_kill_server
etl_start_server "$ETL_DATA_DIR" "$ETL_HTTP" "$ETL_WORKERS" || exit 1
end=$(etl_wait 240 "$r")
if [ "${end##* }" = SUCCEEDED ] && verify_date 2026-03-04; then
	ok "after a SIGKILL mid-Map ($inmap tasks started) and a restart, the night loads correctly"
else
	not_ok "after a SIGKILL mid-Map and a restart, the night loads correctly" "$end"
fi
check "earlier nights are intact after the crash" verify_date 2026-03-02

# ---- 6. a worker SIGKILLed mid-task: the lease (HeartbeatSeconds 10) and the Retry ---------
python3 "$SLUICE_SRC/examples/nightly-etl/gen_data.py" --out "$ETL_DATA" --records 300 \
	--parts 4 2026-03-05 2>/dev/null
r=$(etl_api states StartExecution "{\"stateMachineArn\": \"arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl\", \"name\": \"t-worker-kill\", \"input\": \"{\\\"date\\\": \\\"2026-03-05\\\"}\"}" | etl_json 'd["executionArn"]')
started=0
for _ in $(seq 300); do
	started=$(etl_api states GetExecutionHistory "{\"executionArn\": \"$r\", \"maxResults\": 1000}" |
		etl_json 'sum(1 for e in d["events"] if e["type"] == "ActivityStarted")')
	[ "${started:-0}" -ge 2 ] && break
	sleep 0.1
done
kill -KILL "$ETL_EXTRACT_PID" 2>/dev/null
wait "$ETL_EXTRACT_PID" 2>/dev/null
"$ETL_EXTRACT" --connect "$ETL_WORKERS" --data "$ETL_DATA" --concurrency 4 --name extract-2 \
	2>>"$ETL_HOME/logs/extract_transform.log" &
ETL_PIDS+=($!)
end=$(etl_wait 120 "$r")
timeouts=$(etl_api states GetExecutionHistory "{\"executionArn\": \"$r\", \"maxResults\": 1000}" |
	etl_json 'sum(1 for e in d["events"] if e["type"] == "ActivityTimedOut")')
if [ "${end##* }" = SUCCEEDED ] && [ "${timeouts:-0}" -gt 0 ] && verify_date 2026-03-05; then
	ok "a worker killed mid-task: its tasks time out ($timeouts), are retried elsewhere, the night loads"
else
	not_ok "a worker killed mid-task: its tasks time out, are retried elsewhere, the night loads" \
		"$end" "ActivityTimedOut events: $timeouts"
fi

# ---- 7. a task longer than HeartbeatSeconds (10 s) lives on the library's heartbeats --------
python3 "$SLUICE_SRC/examples/nightly-etl/gen_data.py" --out "$ETL_DATA" --records 100 \
	--parts 2 2026-03-06 2>/dev/null
kill -TERM "${ETL_PIDS[-1]}" 2>/dev/null
wait "${ETL_PIDS[-1]}" 2>/dev/null
unset 'ETL_PIDS[-1]'
ETL_SLOW_MS=12000 ETL_FLAKY_EVERY=0 "$ETL_EXTRACT" --connect "$ETL_WORKERS" --data "$ETL_DATA" \
	--concurrency 2 --name extract-slow 2>>"$ETL_HOME/logs/extract_transform.log" &
slow_pid=$!
ETL_PIDS+=($!)
r=$(etl_api states StartExecution "{\"stateMachineArn\": \"arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl\", \"name\": \"t-slow\", \"input\": \"{\\\"date\\\": \\\"2026-03-06\\\"}\"}" | etl_json 'd["executionArn"]')
end=$(etl_wait 120 "$r")
# Attempts handed to polls that the stopped workers left behind time out on their lease (at
# least once delivery); what counts is that the slow worker's own attempts never do.
slow=$(etl_api states GetExecutionHistory "{\"executionArn\": \"$r\", \"maxResults\": 1000}" |
	etl_json '(lambda ev: [sum(1 for e in ev.values() if e["type"] == t and ev.get(e.get("previousEventId"), {}).get("activityStartedEventDetails", {}).get("workerName") == "extract-slow") for t in ("ActivitySucceeded", "ActivityTimedOut")])({e["id"]: e for e in d["events"]})')
if [ "${end##* }" = SUCCEEDED ] && [ "$slow" = "[2, 0]" ] && verify_date 2026-03-06; then
	ok "12 s tasks under HeartbeatSeconds 10 succeed on the library's heartbeats"
else
	not_ok "12 s tasks under HeartbeatSeconds 10 succeed on the library's heartbeats" "$end" \
		"extract-slow's attempts [succeeded, timed out]: $slow"
fi

# ---- 8. a loader that fails: the Load's Catch, and the night's earlier rows stay as they were
kill -TERM "$slow_pid" 2>/dev/null
wait "$slow_pid" 2>/dev/null
"$ETL_EXTRACT" --connect "$ETL_WORKERS" --data "$ETL_DATA" --concurrency 4 --name extract-3 \
	2>>"$ETL_HOME/logs/extract_transform.log" &
ETL_PIDS+=($!)
kill -TERM "$ETL_LOAD_PID" 2>/dev/null
wait "$ETL_LOAD_PID" 2>/dev/null
ETL_LOAD_FAIL=2026-03-01 "$SLUICE" worker --connect "$ETL_WORKERS" --activity load-sqlite \
	--name load-refusing --exec "$SLUICE_SRC/examples/nightly-etl/workers/load_sqlite.sh" \
	2>>"$ETL_HOME/logs/load_sqlite.log" &
ETL_PIDS+=($!)
r=$(etl_api states StartExecution "{\"stateMachineArn\": \"arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl\", \"name\": \"t-bad-loader\", \"input\": \"{\\\"date\\\": \\\"2026-03-01\\\"}\"}" | etl_json 'd["executionArn"]')
end=$(etl_wait 120 "$r")
got=""
for _ in $(seq 150); do
	got=$(grep -h 'ETL.LoadRefused' "$ETL_WEBHOOK_OUT" 2>/dev/null || true)
	[ -n "$got" ] && break
	sleep 0.2
done
if [ "${end##* }" = FAILED ] && [[ $got == *2026-03-01* ]] && verify_date 2026-03-01; then
	ok "a failing loader: Catch, etl.failed to the webhook, the night's loaded rows untouched"
else
	not_ok "a failing loader: Catch, etl.failed to the webhook, the night's loaded rows untouched" \
		"$end" "webhook: $got"
fi

# ---- 5. a second apply changes nothing --------------------------------------------------------
out=$("$SLUICE" apply -f "$SLUICE_SRC/examples/nightly-etl/app.yaml" 2>&1)
if [ $? -eq 0 ] && grep -q 'nothing to change' <<<"$out" && ! grep -qE '^[+~-] ' <<<"$out"; then
	ok "a second apply changes nothing"
else
	not_ok "a second apply changes nothing" "$out"
fi
# another port in the environment is another webhook URL: the plan changes the rule's target
out=$(SLUICE_WEBHOOK_PORT=1 "$SLUICE" apply -f "$SLUICE_SRC/examples/nightly-etl/app.yaml" \
	--dry-run 2>&1)
if grep -qE '^~ .*etl-failed' <<<"$out" && ! grep -q 'nothing to change' <<<"$out"; then
	ok "the webhook port comes from SLUICE_WEBHOOK_PORT (a dry run with another port changes the target)"
else
	not_ok "the webhook port comes from SLUICE_WEBHOOK_PORT" "$out"
fi

check "sluice serve stops cleanly (SIGTERM, exit 0)" etl_stop_all
# (in a sanitizer build, the C worker and the server report memory errors in their logs)
if grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$ETL_HOME"/logs/*.log; then
	not_ok "no sanitizer report in the server and worker logs"
else
	ok "no sanitizer report in the server and worker logs"
fi
exit $((failures > 0))
