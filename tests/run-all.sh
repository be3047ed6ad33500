#!/bin/bash
# Runs every test: unit tests (cmocka, TAP output), the fuzz targets, then the
# shell suites (integration, security, the bypass matrix; root); then the unit
# tests and the shell suites a second time against the sanitizer build (build/san, `make
# san`: ASan with LeakSanitizer, UBSan).  Prints each suite's results and one
# closing line "N passed, N failed, N skipped" over all of them.  Exits
# non-zero when anything failed, or when anything was skipped under CI=true.
#
# In the sanitizer pass every sanitized process (the daemon, the hook podman
# runs, background probes included, whose exit status no test looks at)
# writes its report into one directory (log_path); a suite after which a
# report file is there fails, naming the file and printing it.
# CGFENCE_SAN=0 leaves the sanitizer pass out.
set -u
cd "$(dirname "$0")/.."
TOP=$PWD

passed=0 failed=0 skipped=0
log=$(mktemp /tmp/cgfence-tests.XXXXXX)
san_logs=
trap 'rm -f "$log"; [ -z "$san_logs" ] || rm -rf "$san_logs"' EXIT

tally() { # tally NAME PASSED FAILED SKIPPED
	passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + $4))
	printf '== %-28s %3d passed, %d failed, %d skipped\n' "$1" "$2" "$3" "$4"
}

# san_reports: in the sanitizer pass, prints and removes the reports written
# since the last call; false when there were any.
san_reports() {
	local r found=0
	[ -n "$san_logs" ] || return 0
	for r in "$san_logs"/*; do
		[ -f "$r" ] || continue
		found=1
		echo "   sanitizer report $(basename "$r"):"
		head -n 60 "$r" | sed 's/^/     /'
		rm -f "$r"
	done
	[ "$found" -eq 0 ]
}

# unit_tests BUILD PREFIX: the cmocka binaries in BUILD/tests.
unit_tests() {
	local t name rc p s f
	for t in "$1"/tests/test_*; do
		[ -x "$t" ] || continue
		name=$2$(basename "$t")
		CMOCKA_MESSAGE_OUTPUT=tap timeout 600 "$t" >"$log" 2>&1
		rc=$?
		p=$(grep -Ec '^ok [0-9]+ - .*' "$log" | tr -d ' ')
		s=$(grep -Ec '^ok [0-9]+ - .*# SKIP' "$log" | tr -d ' ')
		f=$(grep -Ec '^not ok ' "$log" | tr -d ' ')
		p=$((p - s))
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		[ "$f" -ne 0 ] && sed 's/^/   /' "$log"
		san_reports || f=$((f + 1))
		tally "$name" "$p" "$f" "$s"
	done
}

# shell_suites PREFIX: the integration, security and bypass suites, against the
# binaries in $CGFENCE_BUILD (tests/lib.sh).
shell_suites() {
	local suite name rc line p f s
	for suite in tests/integration/test_*.sh tests/security/test_*.sh tests/bypass/test_*.sh; do
		[ -f "$suite" ] || continue
		name=$1${suite#tests/}
		timeout 1800 bash "$suite" >"$log" 2>&1
		rc=$?
		sed 's/^/   /' "$log"
		line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
		if [ -z "$line" ]; then
			san_reports
			tally "$name" 0 1 0
			continue
		fi
		read -r p _ f _ s _ <<<"$line"
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		san_reports || f=$((f + 1))
		tally "$name" "$p" "$f" "$s"
	done
}

unit_tests build ""

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

CGFENCE_BUILD=$TOP/build shell_suites ""

# The sanitizer pass.  The report directory is writable by everyone: the
# rootless podman test runs the hook as a user of its own.
if [ "${CGFENCE_SAN:-1}" != 0 ]; then
	if [ -x build/san/cgfenced ]; then
		san_logs=$(mktemp -d /tmp/cgfence-san.XXXXXX) && chmod 1777 "$san_logs" || exit 1
		export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:log_path=$san_logs/asan"
		export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$san_logs/ubsan"
		unit_tests build/san san/
		CGFENCE_BUILD=$TOP/build/san shell_suites san/
		unset ASAN_OPTIONS UBSAN_OPTIONS
	elif [ "${CI:-}" = true ]; then
		tally "san (no build/san: make san)" 0 1 0
	else
		tally "san (no build/san: make san)" 0 0 1
	fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
if [ "${CI:-}" = true ] && [ "$skipped" -ne 0 ]; then
	echo "CI=true: $skipped tests skipped, and CI must run them all" >&2
	exit 1
fi
exit 0
