#!/bin/bash
# Runs every test: unit tests (cmocka, TAP output), then the shell suites
# (integration, security and the bypass matrix, root).  Prints each suite's
# results and one closing line "N passed, N failed, N skipped" over all of
# them.  Exits non-zero when anything failed, or when anything was skipped
# under CI=true.
set -u
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
log=$(mktemp /tmp/cgfence-tests.XXXXXX)
trap 'rm -f "$log"' EXIT

tally() { # tally NAME PASSED FAILED SKIPPED
	passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + $4))
	printf '== %-28s %3d passed, %d failed, %d skipped\n' "$1" "$2" "$3" "$4"
}

for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	CMOCKA_MESSAGE_OUTPUT=tap timeout 600 "$t" >"$log" 2>&1
	rc=$?
	p=$(grep -Ec '^ok [0-9]+ - .*' "$log" | tr -d ' ')
	s=$(grep -Ec '^ok [0-9]+ - .*# SKIP' "$log" | tr -d ' ')
	f=$(grep -Ec '^not ok ' "$log" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	[ "$f" -ne 0 ] && sed 's/^/   /' "$log"
	tally "$name" "$p" "$f" "$s"
done

# Fuzz targets, each for a bounded time (FUZZ_SECONDS, 15 by default).
for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	case $f in *.log | *-crash-* | *-leak-* | *-timeout-* | *-oom-*) continue ;; esac
	if tests/fuzz/run "$f" "${FUZZ_SECONDS:-15}" >"$log" 2>&1; then
		tally "$(basename "$f")" 1 0 0
	else
		sed 's/^/   /' "$log"
		tally "$(basename "$f")" 0 1 0
	fi
done

for suite in tests/integration/test_*.sh tests/security/test_*.sh tests/bypass/test_*.sh; do
	[ -f "$suite" ] || continue
	name=${suite#tests/}
	timeout 1800 bash "$suite" >"$log" 2>&1
	rc=$?
	sed 's/^/   /' "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
	if [ -z "$line" ]; then
		tally "$name" 0 1 0
		continue
	fi
	read -r p _ f _ s _ <<<"$line"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	tally "$name" "$p" "$f" "$s"
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
if [ "${CI:-}" = true ] && [ "$skipped" -ne 0 ]; then
	echo "CI=true: $skipped tests skipped, and CI must run them all" >&2
	exit 1
fi
exit 0
