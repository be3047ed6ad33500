#!/bin/bash
# `make bench` (bench/compare, bench/compare_report.py), kept working by
# make check: the report judged from rounds whose every figure is known, and a
# short run of the whole benchmark (two sizes, a few rounds) that must see
# every contender refuse a denied host (bench/compare's deny_check: EPERM, or
# a connect that hangs; never a refusal by the host itself), measure every
# side, report each cgfence hook where bpf_stats saw it run, and leave
# nothing behind.
. "$(dirname "$0")/../lib.sh"

REPORT=$TOP/bench/compare_report.py

# rounds_tsv FILE: raw records whose figures are chosen so that every ratio,
# CI and verdict the report prints is known (21 rounds: the 95 % CI of a
# median is the 7th and 15th of them).
#   conn, 10 and 1,000 prefixes: cgfence 900+i against no filter's 1000
#     (median 0.910, CI 0.906-0.914); systemd-style LPM equal to no filter, so
#     above cgfence; at 1,000 ipset such that cgfence / ipset is 0.980+0.0015i
#     (median 0.995, CI 0.989-1.001: reaching 1, so "at"); at 10 nft such that
#     it is 0.990+0.0015i (median 1.005, CI 0.999-1.011: not "at", the median
#     is above 1); nft skipped at 1,000
#   rr: every contender at 0.95 of no filter; cgfence equal to no filter at 10
#     and 0.930+0.0015i of it at 1,000 (median 0.945, CI 0.939-0.951: below
#     the 5 % bound, not resolved); at 10 nft such that cgfence / nft is
#     0.980+0.0015i
#   stream, 8 rounds: cgfence at 0.99 of no filter at 10, at 0.970+0.005i at
#     1,000 (median 0.9875, CI 0.975-1.000: not resolved); iperf3: 1 round
#   bpf_stats: 400 ns per connection at 10; streaming, 1 % of a CPU at 10 and
#     1.5 % at 1,000
rounds_tsv() {
	awk 'BEGIN {
		OFS = "\t"
		print "meta", "date", "2026-01-01 00:00 UTC"; print "meta", "rounds", 21
		print "meta", "stream_rounds", 8; print "cmd", "bench/compare (synthetic)"
		print "sides", "conn", 10, "none", "cgfence", "sdlpm", "ipset", "nft", "floor", "null"
		print "sides", "rr", 10, "none", "cgfence", "sdlpm", "ipset", "nft", "null"
		print "sides", "conn", 1000, "none", "cgfence", "sdlpm", "ipset", "floor", "null"
		print "sides", "rr", 1000, "none", "cgfence", "sdlpm", "ipset", "null"
		print "skip", 1000, "nft", "nft -f did not finish"
		for (i = 0; i < 21; i++) {
			r = 0.980 + 0.0015 * i
			print "round", "conn", 10, i, 1000, 900 + i, 1000, 800, (900 + i) / (r + 0.01), 990, 1000, 0
			print "round", "rr", 10, i, 100, 100, 95, 95, 100 / r, 100, 0
			print "round", "conn", 1000, i, 1000, 900 + i, 1000, (900 + i) / r, 990, 1000, 0
			print "round", "rr", 1000, i, 100, 100 * (0.930 + 0.0015 * i), 95, 95, 100, 0
		}
		print "sides", "stream", 10, "none", "cgfence", "null"
		for (i = 0; i < 8; i++) print "round", "stream", 10, i, 10e9, 9.9e9, 10e9, 0
		print "sides", "stream", 1000, "none", "cgfence", "null"
		for (i = 0; i < 8; i++) print "round", "stream", 1000, i, 10e9, (0.970 + 0.005 * i) * 10e9, 10e9, 0
		print "sides", "iperf3", 1000, "none", "cgfence", "null"
		print "round", "iperf3", 1000, 0, 10e9, 5e9, 10e9, 0
		print "load", 10, "cgfence", 0.05, 806000, "attach"
		print "stat", 10, "cgfence", "conn", "cgroup_inet4_connect", 100000, 1000, 1000
		print "stat", 10, "cgfence", "conn", "cgroup_inet_egress", 300000, 3000, 1000
		print "stat", 10, "sdlpm", "conn", "cgroup_inet_egress", 250000, 3000, 1000
		print "stat", 10, "cgfence", "stream", "cgroup_inet_egress", 12000000, 50000, 1.2
		print "stat", 1000, "cgfence", "stream", "cgroup_inet_egress", 18000000, 90000, 1.2
	}' >"$1"
}

# has_line DOC LINE WHAT: DOC holds LINE, whole.
has_line() {
	grep -qxF -- "$2" "$1" || fail "$3: no line '$2' in $(basename "$1")"
}

is_png() {
	[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
}

test_report_from_known_rounds() {
	local x
	for x in python3 gnuplot; do
		command -v "$x" >/dev/null || { skip "needs $x (make test-deps)"; return; }
	done
	rounds_tsv "$WORK/raw.tsv"
	python3 "$REPORT" "$WORK/raw.tsv" "$WORK/b.md" "$WORK/b.png" >"$WORK/report.out" 2>&1 ||
		{ fail "compare_report.py: $(tail -3 "$WORK/report.out")"; return; }
	local d=$WORK/b.md
	has_line "$d" "| new connections/s, cgfence / no filter | **0.910** | **0.910** |" "cgfence's ratio"
	has_line "$d" "| new connections/s, systemd-style cgroup_skb LPM / no filter | 1.000 | 1.000 |" "sdlpm's ratio"
	has_line "$d" "| new connections/s, nftables interval set / no filter | 0.905 | - |" "a skipped size"
	has_line "$d" "| connections/s, cgfence / best other contender | 0.910 | 0.910 |" "best other, conn"
	has_line "$d" "| request/response/s, cgfence / best other contender | 0.995 | 0.995 |" "best other, rr"
	has_line "$d" "| BPF run time per connection, cgfence (bpf_stats) | 400 ns | - |" "hooks added up"
	has_line "$d" "| BPF run time per connection, systemd-style cgroup_skb LPM (bpf_stats) | 250 ns | - |" \
		"sdlpm's run time"
	has_line "$d" "| 10 | cgfence | **0.910** [0.906-0.914] 0.90-0.92 | **1.000** [1.000-1.000] 1.00-1.00 | **0.990** [0.990-0.990] 0.99-0.99 |" \
		"median, its 95 % CI (7th and 15th of 21), min-max"
	has_line "$d" "| 1,000 | nftables interval set | skipped | skipped | skipped |" "skipped row"
	# above cgfence: the whole CI below 1; "at": median below 1, CI reaching 1
	has_line "$d" "| cgfence at or above every contender at every size on connections/s | above cgfence: sdlpm at 10: 0.910 [0.906-0.914]; sdlpm at 1,000: 0.910 [0.906-0.914]; at cgfence (median below 1, CI reaching 1): ipset at 1,000: 0.995 [0.989-1.001] | **MISS** |" \
		"conn target: contenders above cgfence, and one at it"
	has_line "$d" "| cgfence at or above every contender at every size on request/response/s | no contender above cgfence in 5 comparisons; at cgfence (median below 1, CI reaching 1): nft at 10: 0.995 [0.989-1.001]; sdlpm at 1,000: 0.995 [0.988-1.001]; ipset at 1,000: 0.995 [0.988-1.001] | PASS |" \
		"rr target: a contender at cgfence is no miss"
	has_line "$d" "| within 5 % of no filter at 1,000 prefixes on connections/s | ratio 0.910 [0.906-0.914] | **MISS** |" \
		"the largest size's bound, missed"
	# judged on the median; a CI across the bound leaves it open
	has_line "$d" "| within 5 % of no filter at 1,000 prefixes on request/response/s | ratio 0.945 [0.939-0.951] | **MISS** (not resolved: 95 % CI 0.939-0.951) |" \
		"the largest size's bound, a CI across it"
	has_line "$d" "| throughput within 2 % of no filter (stream, every size) | lowest ratio 0.988 [0.975-1.000] at 1,000 prefixes; 10: 0.990, 1,000: 0.988 | PASS (not resolved: 95 % CI 0.975-1.000) |" \
		"throughput target: the lowest size, a CI across the bound"
	has_line "$d" "| throughput within 2 % of no filter (iperf3, 1,000 prefixes) | lowest ratio 0.500 [0.500-0.500] at 1,000 prefixes; 1,000: 0.500 | **MISS** (not resolved: 1 round, too few for a 95 % CI) |" \
		"throughput target from too few rounds"
	assert_match "at most 1\.500 % \(1,000 prefixes\); 10: 1\.000 %, 1,000: 1\.500 % \| PASS \|$" \
		"$(grep '^| throughput within 2 % of no filter, bounded' "$d")" "CPU share of a stream"
	assert_match "^No filter, median of all its windows: connections/s 1,000/s; request/response/s 100/s;" \
		"$(grep '^No filter, median' "$d")" "no filter's own rate"
	is_png "$WORK/b.png" || fail "no PNG plot: $(head -c 16 "$WORK/b.png" | od -c | head -1)"
}

# bench_tags: the tags (cgfc<pid>) of bench/compare runs that have
# namespaces, cgroups or pins on this machine, one a line.
bench_tags() {
	{
		ip netns list | awk '{ print $1 }'
		ls "$CG2" /sys/fs/bpf
	} 2>/dev/null | grep -oE '^cgfc[0-9]+' | sort -u
}

# After a run that failed or was killed: whatever its tag left (a tag not
# there before the test), and the bpf_stats setting as it was.
suite_cleanup() {
	local tag ns cg
	[ -f "$WORK/tags.before" ] || return 0
	for tag in $(bench_tags | comm -13 "$WORK/tags.before" -); do
		pkill -f "/sys/fs/bpf/$tag/" 2>/dev/null # its cgfenced
		for cg in "$CG2/$tag"-*; do remove_cgroup_tree "$cg"; done
		for ns in $(ip netns list | awk '{ print $1 }' | grep "^$tag[a-z]"); do ip netns del "$ns"; done
		rm -rf "/sys/fs/bpf/$tag"
	done
	[ -f "$WORK/stats.before" ] && cat "$WORK/stats.before" >/proc/sys/kernel/bpf_stats_enabled
	rm -f "$WORK/tags.before" "$WORK/stats.before"
}

# A run of bench/compare itself, short: two sizes, a few rounds of each
# measure, one iperf3 round.
test_compare_short_run() {
	need "$CGFENCE" "$CGFENCED" -- ip iptables ipset nft iperf3 gnuplot bpftool python3 cc clang ||
		return
	local doc_sum tsv_sum rc
	doc_sum=$(md5sum "$TOP/docs/benchmarks.md" "$TOP/docs/connect-rate.png" 2>/dev/null)
	tsv_sum=$(md5sum "$TOP/build/bench/compare.tsv" 2>/dev/null)
	bench_tags >"$WORK/tags.before"
	cat /proc/sys/kernel/bpf_stats_enabled >"$WORK/stats.before"
	# on, so that a run that does not put back what it found shows
	echo 1 >/proc/sys/kernel/bpf_stats_enabled
	BENCH_SIZES="10 1000" BENCH_ROUNDS=6 BENCH_RR_ROUNDS=6 BENCH_STREAM_ROUNDS=4 \
		BENCH_IPERF_ROUNDS=1 BENCH_DOC="$WORK/b.md" BENCH_PLOT="$WORK/b.png" \
		BENCH_TSV="$WORK/b.tsv" BENCH_BUILD="$BUILD" \
		timeout -k 30 600 "$TOP/bench/compare" >"$WORK/compare.out" 2>&1
	rc=$?
	assert_eq 0 "$rc" "bench/compare exit status ($(grep 'bench/compare:' "$WORK/compare.out" | tail -2))"

	# What it leaves behind: nothing of its own (every name carries its tag).
	assert_eq "" "$(bench_tags | comm -13 "$WORK/tags.before" -)" \
		"tags of namespaces, cgroups or pins left"
	assert_eq 1 "$(cat /proc/sys/kernel/bpf_stats_enabled)" "kernel.bpf_stats_enabled put back"
	assert_eq "$doc_sum" "$(md5sum "$TOP/docs/benchmarks.md" "$TOP/docs/connect-rate.png" 2>/dev/null)" \
		"the published report left alone"
	assert_eq "$tsv_sum" "$(md5sum "$TOP/build/bench/compare.tsv" 2>/dev/null)" "the last full run's records left alone"
	[ "$rc" = 0 ] || return
	assert_match "^Machine: .*; cgfence [0-9a-f]+" "$(grep '^Machine:' "$WORK/b.md")" "the machine line"
	if [ "$SANITIZED" = 1 ]; then
		has_line "$WORK/b.md" "**Measured with a sanitizer build (${BUILD#"$TOP"/}): these figures are no measure of cgfence.**" \
			"a sanitizer build named"
	else
		assert_no_match "sanitizer build" "$(cat "$WORK/b.md")" "the normal build called a sanitizer one"
	fi

	# Every side measured in every round: 6 conn rounds a size, a rate for
	# each of the 7 sides ("round conn SIZE I RATE... SLOW", bench/side.h).
	local s
	for s in 10 1000; do
		assert_eq "none cgfence sdlpm ipset nft floor null" \
			"$(awk -F'\t' -v s=$s '$1 == "sides" && $2 == "conn" && $3 == s { $1 = $2 = $3 = ""; print }' \
				"$WORK/b.tsv" | xargs)" "conn sides at $s"
		assert_eq 6 "$(awk -F'\t' -v s=$s '$1 == "round" && $2 == "conn" && $3 == s && NF == 12 {
				for (i = 5; i <= 11; i++) if ($i <= 0) next; n++ } END { print n + 0 }' "$WORK/b.tsv")" \
			"conn rounds at $s with a rate for all 7 sides"
	done

	# bpf_stats saw each cgfence hook run, connect4 once a connection; no setsockopt hook.
	local d=$WORK/b.md
	assert_match "^\| 10 \| cgfence \| cgroup_inet4_connect \| 1\.0 \| [0-9]+ \|" \
		"$(grep '^| 10 | cgfence | cgroup_inet4_connect |' "$d")" "connect4 once per connection"
	assert_eq "" "$(grep '^| 10 | cgfence | cgroup_setsockopt |' "$d")" "no setsockopt program"
	assert_match "^\| 1,000 \| cgfence \| cgroup_inet_egress \| [2-9]\.[0-9] \|" \
		"$(grep '^| 1,000 | cgfence | cgroup_inet_egress |' "$d")" "egress, a few packets a connection"
	assert_match "^\| 1,000 \| systemd-style cgroup_skb LPM \| cgroup_inet_egress \|" \
		"$(grep '^| 1,000 | systemd-style cgroup_skb LPM | cgroup_inet_egress |' "$d")" "sdlpm's program ran"
	assert_match "^\| new connections/s, cgfence / no filter \| \*\*[0-9.]+\*\* \| \*\*[0-9.]+\*\* \|$" \
		"$(grep '^| new connections/s, cgfence / no filter' "$d")" "summary row"
	assert_match "^\| allowlist replaced live, cgfence \(cgfenced reload\) \| [0-9.]+ s \| [0-9.]+ s \|$" \
		"$(grep '^| allowlist replaced live' "$d")" "live replacement timed"
	is_png "$WORK/b.png" || fail "no PNG plot"
}

run_tests "$@"
