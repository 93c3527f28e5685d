#!/bin/sh
# The activity load-sqlite, served by `sluice worker --exec`: loads one night's per-street
# aggregates into the SQLite database $ETL_DB in ONE transaction that first deletes that
# night's rows, so a re-run (a retry, a backfill of the same night) replaces, never doubles.
#
# Input (stdin): {"date": "YYYY-MM-DD", "execution": ARN, "parts": [extract-transform
# results]}. Output: {"date", "files", "records", "bad", "streets", "lots"} as loaded.
# The JSON is read by SQLite itself (json_each, readfile): nothing from the input is pasted
# into SQL except the date, which is checked first.
set -eu
fail() {
	printf '{"error": "%s", "cause": "%s"}\n' "$1" "$2" >&2
	exit 1
}
[ -n "${ETL_DB:-}" ] || fail ETL.Config "ETL_DB is not set in the worker's environment"
tmp=$(mktemp "${TMPDIR:-/tmp}/etl-load.XXXXXX")
trap 'rm -f "$tmp" "$tmp.out" "$tmp.err"' EXIT
head -c 4194304 >"$tmp"
date=$(sed -n 's/.*"date"[[:space:]]*:[[:space:]]*"\([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}\)".*/\1/p' "$tmp" | head -n 1)
[ -n "$date" ] || fail ETL.BadInput "expected {\\\"date\\\": \\\"YYYY-MM-DD\\\", \\\"parts\\\": [...]}"
case $tmp in *\'*) fail ETL.Config "temporary path with a quote: $tmp" ;; esac
# Optional failure injection for the example's test of the Catch path.
[ "${ETL_LOAD_FAIL:-}" != "$date" ] || fail ETL.LoadRefused "ETL_LOAD_FAIL refuses to load $date"

if ! sqlite3 -bail "$ETL_DB" >"$tmp.out" 2>"$tmp.err" <<SQL
.timeout 15000
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS street_stats (
	date TEXT NOT NULL, street TEXT NOT NULL,
	lots INTEGER NOT NULL, blocks INTEGER NOT NULL, odd INTEGER NOT NULL, even INTEGER NOT NULL,
	PRIMARY KEY (date, street));
CREATE TABLE IF NOT EXISTS loads (
	date TEXT PRIMARY KEY, files INTEGER NOT NULL, records INTEGER NOT NULL,
	bad INTEGER NOT NULL, execution TEXT, loaded_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bad_records (
	date TEXT NOT NULL, file TEXT NOT NULL, line INTEGER, reason TEXT);
BEGIN IMMEDIATE;
CREATE TEMP TABLE doc AS SELECT CAST(readfile('$tmp') AS TEXT) AS j;
CREATE TEMP TABLE input_has_parts_array (ok INTEGER CHECK (ok));
INSERT INTO input_has_parts_array
	SELECT json_valid(j) AND coalesce(json_type(j, '\$.parts'), '') = 'array' FROM doc;
DELETE FROM street_stats WHERE date = '$date';
DELETE FROM bad_records WHERE date = '$date';
DELETE FROM loads WHERE date = '$date';
CREATE TEMP TABLE st AS
	SELECT s.key AS street, s.value AS v
	FROM doc, json_each(doc.j, '\$.parts') AS p, json_each(p.value, '\$.streets') AS s;
INSERT INTO street_stats (date, street, lots, blocks, odd, even)
	SELECT '$date', a.street, a.lots, coalesce(b.n, 0), a.odd, a.even
	FROM (SELECT street, sum(json_extract(v, '\$.lots')) AS lots,
	             sum(json_extract(v, '\$.odd')) AS odd, sum(json_extract(v, '\$.even')) AS even
	      FROM st GROUP BY street) AS a
	LEFT JOIN (SELECT st.street, count(DISTINCT bl.value) AS n
	           FROM st, json_each(st.v, '\$.blocks') AS bl GROUP BY st.street) AS b
	USING (street);
INSERT INTO bad_records (date, file, line, reason)
	SELECT '$date', json_extract(p.value, '\$.file'), json_extract(e.value, '\$.line'),
	       json_extract(e.value, '\$.reason')
	FROM doc, json_each(doc.j, '\$.parts') AS p, json_each(p.value, '\$.errors') AS e;
INSERT INTO loads (date, files, records, bad, execution, loaded_at)
	SELECT '$date', json_array_length(j, '\$.parts'),
	       (SELECT coalesce(sum(json_extract(p.value, '\$.records')), 0)
	        FROM json_each(doc.j, '\$.parts') AS p),
	       (SELECT coalesce(sum(json_extract(p.value, '\$.bad')), 0)
	        FROM json_each(doc.j, '\$.parts') AS p),
	       json_extract(j, '\$.execution'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
	FROM doc;
COMMIT;
.mode list
.output stdout
SELECT json_object('date', l.date, 'files', l.files, 'records', l.records, 'bad', l.bad,
	'streets', (SELECT count(*) FROM street_stats s WHERE s.date = l.date),
	'lots', (SELECT coalesce(sum(lots), 0) FROM street_stats s WHERE s.date = l.date))
FROM loads AS l WHERE l.date = '$date';
SQL
then
	cause=$(tr '\n"\\' '   ' <"$tmp.err" | cut -c1-400)
	case $cause in
	*locked* | *busy*) fail ETL.Transient "sqlite: $cause" ;;
	*) fail ETL.LoadFailed "sqlite: $cause" ;;
	esac
fi
tail -n 1 "$tmp.out"
