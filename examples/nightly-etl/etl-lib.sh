# shellcheck shell=bash
# examples/nightly-etl/etl-lib.sh - the steps of the nightly ETL demo as shell functions,
# shared by ./run-example and tests/integration/test_nightly_etl.sh.
#
# Set before calling etl_init: SLUICE (the sluice binary), ETL_EXTRACT (the C worker
# binary), ETL_HOME (a directory for the run: incoming/, etl.db, logs/, webhook.jsonl).
# Every process started here is recorded and stopped by etl_stop_all (workers first, then
# the webhook receiver, then the server with SIGTERM).

ETL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ETL_PIDS=()
ETL_SERVER_PID=""

etl_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

etl_init() {
	: "${SLUICE:?}" "${ETL_EXTRACT:?}" "${ETL_HOME:?}"
	mkdir -p "$ETL_HOME/incoming" "$ETL_HOME/logs"
	ETL_HOME=$(cd "$ETL_HOME" && pwd)
	export ETL_DATA="$ETL_HOME/incoming" ETL_DB="$ETL_HOME/etl.db"
	ETL_WEBHOOK_OUT="$ETL_HOME/webhook.jsonl"
}

# etl_api states|events OPERATION JSON: one AWS JSON call to the server; prints the answer,
# fails (with the answer on stderr) on a non-2xx status.
etl_api() {
	local target ctype out code
	if [ "$1" = states ]; then
		target="AWSStepFunctions.$2" ctype=application/x-amz-json-1.0
	else
		target="AWSEvents.$2" ctype=application/x-amz-json-1.1
	fi
	out=$(mktemp)
	code=$(curl -sS -o "$out" -w '%{http_code}' -X POST "$SLUICE_ENDPOINT/" \
		-H "Content-Type: $ctype" -H "X-Amz-Target: $target" --data-binary "$3") || code=000
	if [ "${code:0:1}" != 2 ]; then
		printf '%s %s: HTTP %s %s\n' "$1" "$2" "$code" "$(cat "$out")" >&2
		rm -f "$out"
		return 1
	fi
	cat "$out"
	rm -f "$out"
}

# A field of a JSON document on stdin: etl_json '["executionArn"]' or any Python expression
# over d (the document).
etl_json() { python3 -c 'import json,sys; d=json.load(sys.stdin); r='"$1"'; print(r if isinstance(r, str) else json.dumps(r))'; }

# etl_start_server DATA HTTP WORKERS [extra serve options]: starts `sluice serve`, waits for
# its readiness line, then sets ETL_HTTP, ETL_WORKERS (the bound addresses: port 0 is
# allowed) and SLUICE_ENDPOINT.
etl_start_server() {
	local data=$1 http=$2 workers=$3 log="$ETL_HOME/logs/server.log"
	shift 3
	local start line
	touch "$log"
	start=$(wc -l <"$log") # the readiness line of this start is after these
	"$SLUICE" serve --data "$data" --http "$http" --workers "$workers" "$@" 2>>"$log" &
	ETL_SERVER_PID=$!
	for _ in $(seq 300); do
		line=$(tail -n +"$((start + 1))" "$log" | grep -m1 '^sluice: ready ' || true)
		[ -n "$line" ] && break
		if ! kill -0 "$ETL_SERVER_PID" 2>/dev/null; then
			tail -n 20 "$log" >&2
			etl_say "the server exited before it was ready"
			ETL_SERVER_PID=""
			return 1
		fi
		sleep 0.1
	done
	if [ -z "$line" ]; then
		tail -n 20 "$log" >&2
		etl_say "no readiness line from the server after 30 s"
		return 1
	fi
	ETL_HTTP=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")
	ETL_WORKERS=$(sed -n 's/.* workers=\([^ ]*\).*/\1/p' <<<"$line")
	export SLUICE_ENDPOINT="http://$ETL_HTTP"
}

# SIGKILL, as a crash would (for the test); the data directory keeps everything acknowledged.
etl_kill_server() {
	[ -n "$ETL_SERVER_PID" ] || return 0
	kill -KILL "$ETL_SERVER_PID" 2>/dev/null || true
	wait "$ETL_SERVER_PID" 2>/dev/null || true
	ETL_SERVER_PID=""
}

# SIGTERM and wait; returns the server's exit status.
etl_stop_server() {
	[ -n "$ETL_SERVER_PID" ] || return 0
	local rc=0
	kill -TERM "$ETL_SERVER_PID" 2>/dev/null || true
	wait "$ETL_SERVER_PID" || rc=$?
	ETL_SERVER_PID=""
	return "$rc"
}

# The example's workers, dialling $ETL_WORKERS: both styles, a C worker and two scripts.
etl_start_workers() {
	local logs="$ETL_HOME/logs"
	"$ETL_EXTRACT" --connect "$ETL_WORKERS" --data "$ETL_DATA" --concurrency 4 \
		--name extract-1 2>>"$logs/extract_transform.log" &
	ETL_EXTRACT_PID=$!
	ETL_PIDS+=($!)
	"$SLUICE" worker --connect "$ETL_WORKERS" --activity list-partitions --name list-1 \
		--exec "$ETL_DIR/workers/list_partitions.sh" 2>>"$logs/list_partitions.log" &
	ETL_PIDS+=($!)
	"$SLUICE" worker --connect "$ETL_WORKERS" --activity load-sqlite --name load-1 \
		--exec "$ETL_DIR/workers/load_sqlite.sh" --concurrency 2 2>>"$logs/load_sqlite.log" &
	ETL_LOAD_PID=$!
	ETL_PIDS+=($!)
}

# etl_start_webhook PORT: the demo's alert endpoint; sets ETL_WEBHOOK_PORT (port 0 allowed).
etl_start_webhook() {
	local pf="$ETL_HOME/logs/webhook.port"
	rm -f "$pf"
	python3 "$ETL_DIR/webhook_receiver.py" --port "$1" --out "$ETL_WEBHOOK_OUT" \
		--port-file "$pf" 2>>"$ETL_HOME/logs/webhook.log" &
	ETL_PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$pf" ] && break
		sleep 0.1
	done
	[ -s "$pf" ] || {
		etl_say "the webhook receiver did not start (logs/webhook.log)"
		return 1
	}
	ETL_WEBHOOK_PORT=$(cat "$pf")
}

etl_stop_all() {
	local p
	for p in "${ETL_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${ETL_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	ETL_PIDS=()
	etl_stop_server
}

# etl_dates N: the dates of the last N nightly slots (02:00 UTC) up to now, oldest first.
etl_dates() {
	python3 - "$1" <<'PY'
import datetime, sys
now = datetime.datetime.now(datetime.timezone.utc)
last = now.date() if now.hour >= 2 else now.date() - datetime.timedelta(days=1)
print(" ".join(str(last - datetime.timedelta(days=k)) for k in range(int(sys.argv[1]) - 1, -1, -1)))
PY
}

# etl_apply APPFILE: `sluice apply -f`: creates, changes or leaves alone what the app declares.
etl_apply() { "$SLUICE" apply -f "$1"; }

# etl_backfill DATE...: runs the nights (consecutive dates, oldest first) through the rule
# nightly-etl itself: `sluice schedules backfill` fires its 02:00 slots from the first date's
# midnight up to ETL_BACKFILL_TO (default now), each a scheduled event that the rule's
# InputTransformer turns into {"date": TIME}. Prints the execution ARNs, one a line.
etl_backfill() {
	local since from="${1}T00:00:00Z" to=${ETL_BACKFILL_TO:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
	since=$(date -u +%s)
	"$SLUICE" schedules backfill nightly-etl --from "$from" --to "$to" \
		--max-concurrency "$#" >&2 || return 1
	etl_started_since "$since" "$#"
}

# etl_started_since EPOCH N: the ARNs of nightly-etl executions started since EPOCH, waiting
# (at most 30 s) until there are N of them.
etl_started_since() {
	local out
	for _ in $(seq 150); do
		out=$(etl_api states ListExecutions '{"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:nightly-etl", "maxResults": 100}' |
			python3 -c 'import json,sys
d = json.load(sys.stdin)
for e in sorted(d.get("executions", []), key=lambda e: e["startDate"]):
    if e["startDate"] >= float(sys.argv[1]) - 1:
        print(e["executionArn"])' "$1")
		if [ "$(grep -c . <<<"$out")" -ge "$2" ]; then
			printf '%s\n' "$out"
			return 0
		fi
		sleep 0.2
	done
	printf '%s\n' "$out"
	etl_say "expected $2 executions, found $(grep -c . <<<"$out")"
	return 1
}

# etl_status ARN: RUNNING, SUCCEEDED, FAILED, ...
etl_status() {
	etl_api states DescribeExecution "{\"executionArn\": \"$1\"}" | etl_json 'd["status"]'
}

# etl_wait TIMEOUT ARN...: follows each execution to its end (`sluice executions watch`, then
# DescribeExecution for the status); prints "ARN STATUS" lines; returns 0 if every execution
# ended (whatever its status) within TIMEOUT seconds in total.
etl_wait() {
	local timeout=$1 arn st deadline
	shift
	deadline=$(($(date +%s) + timeout))
	for arn in "$@"; do
		local left=$((deadline - $(date +%s)))
		[ "$left" -gt 0 ] || left=1
		timeout "$((left + 5))" "$SLUICE" executions watch "$arn" --timeout "$left" >&2 || true
		while :; do
			if [ -n "$ETL_SERVER_PID" ] && ! kill -0 "$ETL_SERVER_PID" 2>/dev/null; then
				echo "$arn SERVER-EXITED"
				return 1
			fi
			st=$(etl_status "$arn") || st=UNKNOWN
			[ "$st" != RUNNING ] && [ "$st" != UNKNOWN ] && break
			if [ "$(date +%s)" -ge "$deadline" ]; then
				echo "$arn $st"
				return 1
			fi
			sleep 0.3
		done
		echo "$arn $st"
	done
}

# Rows per date from SQLite, and the bad lines counted.
etl_summary() {
	sqlite3 -header -column "$ETL_DB" \
		"SELECT l.date, l.files, l.records, l.bad AS bad_lines,
		        (SELECT count(*) FROM street_stats s WHERE s.date = l.date) AS street_rows,
		        (SELECT sum(lots) FROM street_stats s WHERE s.date = l.date) AS lots,
		        l.loaded_at
		 FROM loads l ORDER BY l.date"
}
