#!/bin/bash
# `make bench` (bench/compare, bench/compare_report.py), kept working by
# make check: the report judged from rounds whose every figure is known, and a
# short run of the whole benchmark (two sizes, a few rounds) that must check
# every contender's deny, measure every side, report each cgfence hook where
# bpf_stats saw it run, and leave nothing behind.
. "$(dirname "$0")/../lib.sh"

REPORT=$TOP/bench/compare_report.py

# rounds_tsv FILE: raw records whose figures are chosen so that every ratio
# the report prints is known.  conn at 10 and 1,000 prefixes, 21 rounds:
# cgfence 900+i against no filter's 1000 (ratios 0.900-0.920: median 0.910,
# 95 % CI of the median the 7th and 15th, 0.906-0.914), systemd-style LPM
# equal to no filter, so it is above cgfence; nft skipped at 1,000.  rr:
# cgfence equal to no filter, every contender at 0.95.  stream at 10 only:
# cgfence at 0.99 of no filter in 8 rounds.
rounds_tsv() {
	local i
	{
		printf 'meta\tdate\t2026-01-01 00:00 UTC\nmeta\trounds\t21\nmeta\tstream_rounds\t8\n'
		printf 'cmd\tbench/compare (synthetic)\n'
		for s in 10 1000; do
			if [ $s = 10 ]; then
				printf 'sides\tconn\t%s\tnone\tcgfence\tsdlpm\tipset\tnft\tfloor\tnull\n' $s
				printf 'sides\trr\t%s\tnone\tcgfence\tsdlpm\tipset\tnft\tnull\n' $s
			else
				printf 'sides\tconn\t%s\tnone\tcgfence\tsdlpm\tipset\tfloor\tnull\n' $s
				printf 'sides\trr\t%s\tnone\tcgfence\tsdlpm\tipset\tnull\n' $s
				printf 'skip\t%s\tnft\tnft -f did not finish\n' $s
			fi
			for i in $(seq 0 20); do
				if [ $s = 10 ]; then
					printf 'round\tconn\t%s\t%d\t1000\t%d\t1000\t800\t800\t990\t1000\n' $s "$i" $((900 + i))
					printf 'round\trr\t%s\t%d\t100\t100\t95\t95\t95\t100\n' $s "$i"
				else
					printf 'round\tconn\t%s\t%d\t1000\t%d\t1000\t800\t990\t1000\n' $s "$i" $((900 + i))
					printf 'round\trr\t%s\t%d\t100\t100\t95\t95\t100\n' $s "$i"
				fi
			done
		done
		printf 'sides\tstream\t10\tnone\tcgfence\tnull\n'
		for i in $(seq 0 7); do printf 'round\tstream\t10\t%d\t10000000000\t9900000000\t10000000000\n' "$i"; done
		printf 'load\t10\tcgfence\t0.05\t806000\tattach\n'
		printf 'stat\t10\tcgfence\tconn\tcgroup_inet4_connect\t100000\t1000\t1000\n'
		printf 'stat\t10\tcgfence\tconn\tcgroup_inet_egress\t300000\t3000\t1000\n'
		printf 'stat\t10\tsdlpm\tconn\tcgroup_inet_egress\t250000\t3000\t1000\n'
	} >"$1"
}

# has_line DOC LINE WHAT: DOC holds LINE, whole.
has_line() {
	grep -qxF -- "$2" "$1" || fail "$3: no line '$2' in $(basename "$1")"
}

is_png() {
	[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
}

test_report_from_known_rounds() {
	need -- python3 gnuplot || return
	rounds_tsv "$WORK/raw.tsv"
	python3 "$REPORT" "$WORK/raw.tsv" "$WORK/b.md" "$WORK/b.png" >"$WORK/report.out" 2>&1 ||
		{ fail "compare_report.py: $(tail -3 "$WORK/report.out")"; return; }
	local d=$WORK/b.md
	has_line "$d" "| new connections/s, cgfence / no filter | **0.910** | **0.910** |" "cgfence's ratio"
	has_line "$d" "| new connections/s, systemd-style cgroup_skb LPM / no filter | 1.000 | 1.000 |" "sdlpm's ratio"
	has_line "$d" "| new connections/s, nftables interval set / no filter | 0.800 | - |" "a skipped size"
	has_line "$d" "| connections/s, cgfence / best other contender | 0.910 | 0.910 |" "best other, conn"
	has_line "$d" "| request/response/s, cgfence / best other contender | 1.053 | 1.053 |" "best other, rr"
	has_line "$d" "| BPF run time per connection, cgfence (bpf_stats) | 400 ns | - |" "hooks added up"
	has_line "$d" "| BPF run time per connection, systemd-style cgroup_skb LPM (bpf_stats) | 250 ns | - |" \
		"sdlpm's run time"
	has_line "$d" "| 10 | cgfence | **0.910** [0.906-0.914] 0.90-0.92 | **1.000** [1.000-1.000] 1.00-1.00 | **0.990** [0.990-0.990] 0.99-0.99 |" \
		"median, its 95 % CI (7th and 15th of 21), min-max"
	has_line "$d" "| 1,000 | nftables interval set | skipped | skipped | skipped |" "skipped row"
	has_line "$d" "| cgfence at or above every contender at every size on connections/s | above cgfence: sdlpm at 10: 0.910 [0.906-0.914]; sdlpm at 1,000: 0.910 [0.906-0.914] | **MISS** |" \
		"a contender whose whole CI is above cgfence misses the target"
	has_line "$d" "| cgfence at or above every contender at every size on request/response/s | no contender above cgfence in 5 comparisons | PASS |" \
		"rr target"
	has_line "$d" "| within 5 % of no filter at 1,000 prefixes on connections/s | ratio 0.910 [0.906-0.914] | **MISS** |" \
		"the largest size's bound"
	has_line "$d" "| throughput within 2 % of no filter (stream, every size) | lowest ratio 0.990 [0.990-0.990] at 10 prefixes; 10: 0.990 | PASS |" \
		"throughput target"
	assert_match "^No filter, median of all its windows: connections/s 1,000/s; request/response/s 100/s;" \
		"$(grep '^No filter, median' "$d")" "no filter's own rate"
	is_png "$WORK/b.png" || fail "no PNG plot: $(head -c 16 "$WORK/b.png" | od -c | head -1)"
}

# A run of bench/compare itself, short: two sizes, a few rounds of each
# measure, one iperf3 round.
test_compare_short_run() {
	need "$CGFENCE" "$CGFENCED" -- ip iptables ipset nft iperf3 gnuplot bpftool python3 || return
	local doc_sum tsv_sum stats_before pid rc
	doc_sum=$(md5sum "$TOP/docs/benchmarks.md" "$TOP/docs/connect-rate.png" 2>/dev/null)
	tsv_sum=$(md5sum "$TOP/build/bench/compare.tsv" 2>/dev/null)
	stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
	BENCH_SIZES="10 1000" BENCH_ROUNDS=6 BENCH_RR_ROUNDS=6 BENCH_STREAM_ROUNDS=4 \
		BENCH_IPERF_ROUNDS=1 BENCH_DOC="$WORK/b.md" BENCH_PLOT="$WORK/b.png" \
		BENCH_TSV="$WORK/b.tsv" CGFENCE_BUILD="$BUILD" \
		timeout 600 "$TOP/bench/compare" >"$WORK/compare.out" 2>&1 &
	pid=$!
	wait "$pid"
	rc=$?
	assert_eq 0 "$rc" "bench/compare exit status ($(grep 'bench/compare:' "$WORK/compare.out" | tail -2))"

	# What it leaves behind: nothing of its own (every name carries cgfc<pid>).
	assert_eq "" "$(ip netns list | grep "cgfc$pid")" "namespaces left"
	assert_eq "" "$(find "$CG2" -maxdepth 1 -name "cgfc$pid-*")" "cgroups left"
	[ -e "/sys/fs/bpf/cgfc$pid" ] && fail "pins left: /sys/fs/bpf/cgfc$pid"
	assert_eq "$stats_before" "$(cat /proc/sys/kernel/bpf_stats_enabled)" "kernel.bpf_stats_enabled restored"
	assert_eq "$doc_sum" "$(md5sum "$TOP/docs/benchmarks.md" "$TOP/docs/connect-rate.png" 2>/dev/null)" \
		"the published report left alone"
	assert_eq "$tsv_sum" "$(md5sum "$TOP/build/bench/compare.tsv" 2>/dev/null)" "the last full run's records left alone"
	[ "$rc" = 0 ] || return

	# Every side measured in every round: 6 conn rounds a size, 7 sides, each
	# rate above 0 ("round conn SIZE I RATE... SLOW", bench/side.h print_round).
	local s
	for s in 10 1000; do
		assert_eq "none cgfence sdlpm ipset nft floor null" \
			"$(awk -F'\t' -v s=$s '$1 == "sides" && $2 == "conn" && $3 == s { $1 = $2 = $3 = ""; print }' \
				"$WORK/b.tsv" | xargs)" "conn sides at $s"
		assert_eq 6 "$(awk -F'\t' -v s=$s '$1 == "round" && $2 == "conn" && $3 == s && NF == 12 {
				for (i = 5; i <= 11; i++) if ($i <= 0) next; n++ } END { print n + 0 }' "$WORK/b.tsv")" \
			"conn rounds at $s with a rate above 0 on all 7 sides"
	done

	# bpf_stats saw each cgfence hook run, connect4 and setsockopt once a connection.
	local d=$WORK/b.md
	assert_match "^\| 10 \| cgfence \| cgroup_inet4_connect \| 1\.0 \| [0-9]+ \|" \
		"$(grep '^| 10 | cgfence | cgroup_inet4_connect |' "$d")" "connect4 once per connection"
	assert_match "^\| 10 \| cgfence \| cgroup_setsockopt \| 1\.0 \| [0-9]+ \|" \
		"$(grep '^| 10 | cgfence | cgroup_setsockopt |' "$d")" "setsockopt once per connection (SO_LINGER)"
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
