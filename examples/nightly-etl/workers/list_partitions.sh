#!/bin/sh
# The activity list-partitions, served by `sluice worker --exec`: the task input
# {"date": "YYYY-MM-DD"} arrives on stdin; stdout gets the night's partition files,
# relative to $ETL_DATA, as {"date": ..., "files": ["DATE/part-0001.jsonl", ...]}.
# A night without a folder (or with an empty one) fails with ETL.NoPartitions: the
# error object on the last line of stderr is what the workflow's Catch sees.
set -eu
fail() {
	printf '{"error": "%s", "cause": "%s"}\n' "$1" "$2" >&2
	exit 1
}
[ -n "${ETL_DATA:-}" ] || fail ETL.Config "ETL_DATA is not set in the worker's environment"
input=$(head -c 65536)
# The one field we need, checked strictly: nothing else from the input reaches the shell.
date=$(printf '%s' "$input" | sed -n 's/.*"date"[[:space:]]*:[[:space:]]*"\([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}\)".*/\1/p')
[ -n "$date" ] || fail ETL.BadInput "expected {\\\"date\\\": \\\"YYYY-MM-DD\\\"}"
[ -d "$ETL_DATA/$date" ] || fail ETL.NoPartitions "no partition folder for $date under $ETL_DATA"
files=""
for f in "$ETL_DATA/$date"/*.jsonl; do
	[ -f "$f" ] || continue
	case $(basename "$f") in *[!A-Za-z0-9._-]*) continue ;; esac # a name JSON would need to escape
	files="$files${files:+, }\"$date/$(basename "$f")\""
done
[ -n "$files" ] || fail ETL.NoPartitions "the partition folder for $date holds no .jsonl file"
printf '{"date": "%s", "files": [%s]}\n' "$date" "$files"
