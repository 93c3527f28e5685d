#!/usr/bin/env bash
# Pattern-matching benchmark on the synthetic citylots file (see bench/patterns_bench.c).
# usage: bench/patterns.sh [BUILD_DIR] [PASSES]   (default build-patterns-rel, 5 passes)
# Build the bench with -O2: meson setup build-patterns-rel --buildtype=release -Dtests=false
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-patterns-rel}"
passes="${2:-5}"
shared="${SLUICE_SHARED:-$root/../shared}"
out="$root/bench/out"
mkdir -p "$out"
if [ ! -s "$out/citylots.jlines" ]; then
	python3 "$shared/data/gen_synth_citylots.py" "$out/citylots.jlines.tmp"
	mv "$out/citylots.jlines.tmp" "$out/citylots.jlines"
fi
if [ ! -d "$build" ]; then
	meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" bench/bench_patterns >/dev/null
exec "$build/bench/bench_patterns" "$out/citylots.jlines" "$shared/data" "$passes"
