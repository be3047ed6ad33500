#!/bin/bash
# Core enforcement, as root, with real cgroups and network namespaces: every
# test fences a probe with `cgfence run` (or `cgfence attach`) in the client
# namespace and checks both what the probe saw and what the listeners in the
# server namespace counted.  A denial is measured: nothing arrived.
#
# Network (see tests/lib.sh): client 198.18.0.1 / 2001:db8::1, servers
# 198.18.0.2..9 / 2001:db8::2..9.  No other address is ever used; domain rules
# always name --resolver, a dnsmasq this suite starts in the server namespace.
#
#   tests/integration/test_core.sh [test_name...]

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PIN_ROOT=/sys/fs/bpf/cgfence
DENIED='error EPERM'

# ---- helpers ----------------------------------------------------------------

# setup: what every test needs (root, the binaries, cgroup2), then the
# network.  Returns non-zero (after skip or fail) when the test cannot go on.
setup() {
	need "$CGFENCE" "$PROBE" || return 1
	net_up || { fail "the test network did not come up"; return 1; }
}

# start_fence ARGS...: `cgfence run ARGS` in the client namespace, in the
# background (nsenter execs it: FPID is cgfence's own pid).
start_fence() {
	nsenter --net="/run/netns/$NS_C" -- "$CGFENCE" run "$@" \
		>"$WORK/fence.out" 2>"$WORK/fence.err" </dev/null &
	FPID=$!
	echo "$FPID" >>"$WORK/fence.pids"
}

# finish_fence [SECONDS]: waits (bounded, default 30 s) for the run that
# start_fence began; sets RC, OUT, ERR.  Checks that no cgroup is left.
finish_fence() {
	if ! wait_gone "$FPID" "${1:-30}"; then
		fail "cgfence run (pid $FPID) did not end within ${1:-30} s"
		kill -TERM "$FPID" 2>/dev/null
		wait_gone "$FPID" 12 || kill -KILL "$FPID" 2>/dev/null
	fi
	wait "$FPID"
	RC=$?
	sed -i "/^$FPID\$/d" "$WORK/fence.pids"
	OUT=$(cat "$WORK/fence.out")
	ERR=$(cat "$WORK/fence.err")
	local left
	left=$(run_cgroup "$FPID")
	[ -z "$left" ] || fail "cgfence run left its cgroup $left"
}

# run_cgroup PID: the cgroup `cgfence run` with that pid made (run-PID-TIME), if any.
run_cgroup() {
	ls -d "$CG2"/cgfence/run-"$1"-* 2>/dev/null | head -1
}

# fence ARGS...: `cgfence run ARGS` in the client namespace, to its end.
fence() {
	start_fence "$@"
	finish_fence
}

# expect_units NAME N WHAT: listener NAME counted N.  A positive count is
# waited for (2 s at most); zero is checked after a pause in which anything
# sent would long have arrived.
expect_units() {
	local i v
	if [ "$2" = 0 ]; then
		sleep 0.2
	else
		for i in $(seq 1 40); do
			v=$(units "$1")
			[ "$v" -ge "$2" ] && break
			sleep 0.05
		done
	fi
	assert_eq "$2" "$(units "$1")" "$3: what listener $1 counted"
}

# expect_result EXPECTED WHAT: the probe's line (OUT) starts with EXPECTED.
expect_result() {
	case $1 in
	ok) assert_match '^ok' "$OUT" "$2" ;;
	*) assert_eq "$1" "$OUT" "$2" ;;
	esac
}

# run_table ALLOW_ARGS: reads rows "EXPECT LISTENER COUNT PROBE-ARGS..." from
# stdin; each row runs `probe PROBE-ARGS` fenced with ALLOW_ARGS and checks the
# probe's result (ok, or EPERM for "error EPERM") and that listener LISTENER
# has then counted COUNT in all (a row with listener "-" checks no listener).
run_table() {
	local allow=$1 expect name n args rows
	rows=$(cat)
	while read -r expect name n args; do
		case $expect in '' | \#*) continue ;; esac
		[ "$expect" = EPERM ] && expect=$DENIED
		# shellcheck disable=SC2086 # word splitting intended
		fence $allow -- "$PROBE" $args --timeout-ms 1000
		expect_result "$expect" "$args (allow: $allow)"
		[ "$name" = - ] || expect_units "$name" "$n" "$args (allow: $allow)"
	done <<<"$rows"
}

# listen_icmp NS ADDR NAME: counts ICMP echo requests that reach ADDR in NS.
listen_icmp() {
	local i
	rm -f "$WORK/$3.count"
	nsenter --net="/run/netns/$1" -- "$PROBE" listen-raw-icmp "$2" \
		--count-file "$WORK/$3.count" --max-seconds 300 >/dev/null 2>&1 &
	echo $! >>"$WORK/pids"
	wait_file "$WORK/$3.count" 5 || { echo "listener $3 did not start" >&2; return 1; }
}

# in_cgroup DIR CMD...: runs CMD in the client namespace inside cgroup DIR.
in_cgroup() {
	local dir=$1
	shift
	in_client sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$dir" "$@"
}

# cgroup_id DIR: the id of a cgroup (its inode number on cgroup2).
cgroup_id() { stat -c %i "$1"; }

# start_dnsmasq ARGS...: a DNS server on 198.18.0.5:53 in the server
# namespace; waits until it listens.
start_dnsmasq() {
	local i
	nsenter --net="/run/netns/$NS_S" -- dnsmasq --no-daemon --conf-file=/dev/null \
		--no-resolv --no-hosts --bind-interfaces --listen-address=198.18.0.5 --port=53 \
		--user=root --group=root "$@" >"$WORK/dnsmasq.log" 2>&1 </dev/null &
	DNSMASQ_PID=$!
	echo "$DNSMASQ_PID" >"$WORK/dnsmasq.pid"
	for i in $(seq 1 50); do
		in_server grep -q ':0035 ' /proc/net/udp 2>/dev/null && return 0
		alive "$DNSMASQ_PID" || break
		sleep 0.1
	done
	echo "dnsmasq did not start: $(cat "$WORK/dnsmasq.log")" >&2
	return 1
}

# remove_cgroup DIR: kills what is in it, removes it and any pins of it.
remove_cgroup() {
	local d=$1 id i
	[ -d "$d" ] || return 0
	id=$(cgroup_id "$d")
	echo 1 >"$d/cgroup.kill" 2>/dev/null
	for i in $(seq 1 50); do
		rmdir "$d" 2>/dev/null && break
		sleep 0.1
	done
	[ -n "$id" ] && rm -rf "${PIN_ROOT:?}/$id" "${PIN_ROOT:?}/${id}_new"
}

suite_cleanup() {
	local pid
	# cgfence runs still going: SIGTERM lets them remove their cgroup and pins
	if [ -f "$WORK/fence.pids" ]; then
		for pid in $(cat "$WORK/fence.pids"); do
			[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = cgfence ] && kill -TERM "$pid"
		done
		for pid in $(cat "$WORK/fence.pids"); do
			wait_gone "$pid" 12 ||
				{ [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = cgfence ] && kill -KILL "$pid"; }
		done
	fi
	kill_listeners
	if [ -f "$WORK/dnsmasq.pid" ]; then
		pid=$(cat "$WORK/dnsmasq.pid")
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dnsmasq ] && kill "$pid"
		rm -f "$WORK/dnsmasq.pid"
	fi
	net_down
	if [ -n "$CG2" ]; then
		# what a cgfence killed outright may have left
		if [ -f "$WORK/fence.pids" ]; then
			for pid in $(cat "$WORK/fence.pids"); do
				for d in "$CG2"/cgfence/run-"$pid"-*; do
					[ -d "$d" ] && remove_cgroup "$d"
				done
			done
		fi
		for d in "$CG2/$TAG"-*; do
			remove_cgroup "$d"
		done
	fi
	rm -f "$WORK/fence.pids"
}

# ---- TCP --------------------------------------------------------------------

test_tcp_allowed_and_denied() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 a || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return

	fence --allow 198.18.0.2:80 -- "$PROBE" tcp 198.18.0.2 80 --send hello --expect-reply
	assert_eq 0 "$RC" "allowed connect: exit status"
	assert_eq "ok sent=5 reply=5" "$OUT" "allowed connect"
	expect_units a 1 "allowed connect"
	assert_no_match 'denied' "$ERR" "allowed connect: stderr"

	fence --allow 198.18.0.2:80 -- "$PROBE" tcp 198.18.0.3 80 --send hello --timeout-ms 1000
	assert_eq 1 "$RC" "denied connect: exit status (the probe's)"
	assert_eq "$DENIED" "$OUT" "denied connect"
	assert_match '^cgfence: denied tcp 198\.18\.0\.3:80 \(connect4\) pid [0-9]+ \(probe\)$' \
		"$ERR" "deny line"
	expect_units b 0 "denied connect"
	assert_eq "connections=0 bytes=0" "$(cat "$WORK/b.count")" "denied connect: nothing arrived"
}

# Loopback is not special: judged like any other destination.
test_loopback_judged() {
	setup || return
	listen_tcp "$NS_C" 127.0.0.1 7000 l4 || return
	listen_tcp "$NS_C" ::1 7000 l6 || return
	listen_udp "$NS_C" 127.0.0.1 7001 lu || return
	run_table "--allow 198.18.0.2" <<-EOF
		EPERM l4 0 tcp        127.0.0.1 7000
		EPERM l6 0 tcp        ::1 7000
		EPERM lu 0 udp-sendto 127.0.0.1 7001
		EPERM - - ping        127.0.0.1
	EOF
	run_table "--allow 127.0.0.1:7000-7001 --allow [::1]:7000" <<-EOF
		ok l4 1 tcp        127.0.0.1 7000 --send hi --expect-reply
		ok l6 1 tcp        ::1 7000 --send hi --expect-reply
		ok lu 1 udp-sendto 127.0.0.1 7001
	EOF
}

# An IPv4 loopback source leaves only by lo.  uid 0 with no capability can
# set its namespace's route_localnet (a net sysctl its uid owns), bind
# 127.0.0.1 and send from it out of a link; a receiver that takes such a
# source (route_localnet and accept_local on its side, set here so that
# what arrives is counted) answers into its own loopback.
test_loopback_source_refused() {
	setup || return
	listen_udp "$NS_S" 198.18.0.2 5000 u4 || return
	listen_tcp "$NS_S" 198.18.0.2 5001 t4 || return
	ip netns exec "$NS_S" sysctl -qw "net.ipv4.conf.${TAG}b.route_localnet=1" \
		"net.ipv4.conf.${TAG}b.accept_local=1"
	local sysctl=/proc/sys/net/ipv4/conf/${TAG}a/route_localnet
	OUT=$(in_client "$PROBE" udp-forged none 127.0.0.1 198.18.0.2 5000)
	assert_eq "error EINVAL" "$OUT" "unfenced, route_localnet 0: the kernel refuses the route"
	in_client sysctl -qw "net.ipv4.conf.${TAG}a.route_localnet=1"
	OUT=$(in_client "$PROBE" udp-forged none 127.0.0.1 198.18.0.2 5000)
	assert_match '^ok' "$OUT" "unfenced, route_localnet 1: from 127.0.0.1"
	expect_units u4 1 "unfenced: the datagram from 127.0.0.1 arrived"
	in_client sysctl -qw "net.ipv4.conf.${TAG}a.route_localnet=0"
	# fenced, as uid 0: it sets route_localnet itself, and egress refuses
	fence --allow 198.18.0.2:5000-5001 -- sh -c \
		"echo 1 >$sysctl && '$PROBE' udp-forged none 127.0.0.1 198.18.0.2 5000; '$PROBE' tcp-forged none 127.0.0.1 198.18.0.2 5001 --timeout-ms 1000"
	assert_eq 1 "$(in_client cat "$sysctl")" "fenced uid 0 without capabilities set route_localnet"
	assert_eq "error EPERM
error ETIMEDOUT" "$OUT" "fenced: udp refused, the SYN dropped"
	assert_match '^cgfence: denied udp 198\.18\.0\.2:5000 \(egress: source not an address of this host\) pid [0-9]+ \(probe\)$' \
		"$ERR" "fenced: egress's deny line for udp"
	assert_match '^cgfence: denied tcp 198\.18\.0\.2:5001 \(egress: source not an address of this host\) pid [0-9]+ \(probe\)$' \
		"$ERR" "fenced: egress's deny line for tcp"
	expect_units u4 1 "fenced: no datagram from 127.0.0.1"
	expect_units t4 0 "fenced: no connection from 127.0.0.1"
	# --user: not root, it cannot set it at all
	in_client sysctl -qw "net.ipv4.conf.${TAG}a.route_localnet=0"
	fence --user nobody --allow 198.18.0.2:5000 -- sh -c "echo 1 >$sysctl || echo refused"
	assert_eq refused "$OUT" "--user nobody: route_localnet not writable"
}

test_port_restriction() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 p80 || return
	listen_tcp "$NS_S" 198.18.0.2 81 p81 || return
	run_table "--allow 198.18.0.2:80" <<-EOF
		ok    p80 1 tcp 198.18.0.2 80
		EPERM p81 0 tcp 198.18.0.2 81
	EOF
	assert_match 'denied tcp 198\.18\.0\.2:81 \(connect4\)' "$ERR" "deny line for port 81"
}

test_port_range() {
	setup || return
	local p
	for p in 7999 8000 8001 8002 8003; do
		listen_tcp "$NS_S" 198.18.0.2 "$p" "p$p" || return
	done
	run_table "--allow 198.18.0.2:8000-8002" <<-EOF
		EPERM p7999 0 tcp 198.18.0.2 7999
		ok    p8000 1 tcp 198.18.0.2 8000
		ok    p8001 1 tcp 198.18.0.2 8001
		ok    p8002 1 tcp 198.18.0.2 8002
		EPERM p8003 0 tcp 198.18.0.2 8003
	EOF
}

test_protocol_restriction() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 5353 t || return
	listen_udp "$NS_S" 198.18.0.2 5353 u || return
	# /tcp: TCP passes, UDP to the same port does not (neither way of sending)
	run_table "--allow 198.18.0.2:5353/tcp" <<-EOF
		ok    t 1 tcp 198.18.0.2 5353
		EPERM u 0 udp-sendto 198.18.0.2 5353
		EPERM u 0 udp-connect 198.18.0.2 5353
	EOF
	# /udp: the other way round
	run_table "--allow 198.18.0.2:5353/udp" <<-EOF
		ok    u 1 udp-sendto 198.18.0.2 5353
		ok    u 2 udp-connect 198.18.0.2 5353
		EPERM t 1 tcp 198.18.0.2 5353
	EOF
	# no protocol: both
	run_table "--allow 198.18.0.2:5353" <<-EOF
		ok    t 2 tcp 198.18.0.2 5353
		ok    u 3 udp-sendto 198.18.0.2 5353
	EOF
}

# ---- prefixes ---------------------------------------------------------------

test_cidr_rules() {
	setup || return
	local i
	for i in 2 3 4; do
		listen_tcp "$NS_S" "198.18.0.$i" 80 "h$i" || return
		listen_tcp "$NS_S" "2001:db8::$i" 80 "h6_$i" || return
	done
	# 198.18.0.0/30 holds .0-.3; [2001:db8::/126] holds ::0-::3
	run_table "--allow 198.18.0.0/30:80 --allow [2001:db8::/126]:80" <<-EOF
		ok    h2   1 tcp 198.18.0.2 80
		ok    h3   1 tcp 198.18.0.3 80
		EPERM h4   0 tcp 198.18.0.4 80
		ok    h6_2 1 tcp 2001:db8::2 80
		ok    h6_3 1 tcp 2001:db8::3 80
		EPERM h6_4 0 tcp 2001:db8::4 80
	EOF
}

test_overlapping_rules() {
	setup || return
	local a p
	for a in 3 4; do
		for p in 22 23 443; do
			listen_tcp "$NS_S" "198.18.0.$a" "$p" "h${a}_$p" || return
			listen_tcp "$NS_S" "2001:db8::$a" "$p" "h6${a}_$p" || return
		done
	done
	# A /32 allowing 443 inside a /16 allowing 22: both hold for the /32's
	# address (the longest match must carry the union), only 22 elsewhere.
	run_table "--allow 198.18.0.3/32:443 --allow 198.18.0.0/16:22" <<-EOF
		ok    h3_443 1 tcp 198.18.0.3 443
		ok    h3_22  1 tcp 198.18.0.3 22
		EPERM h3_23  0 tcp 198.18.0.3 23
		ok    h4_22  1 tcp 198.18.0.4 22
		EPERM h4_443 0 tcp 198.18.0.4 443
	EOF
	# the same with the wider rule given first, for IPv6
	run_table "--allow [2001:db8::/64]:22 --allow [2001:db8::3]:443" <<-EOF
		ok    h63_443 1 tcp 2001:db8::3 443
		ok    h63_22  1 tcp 2001:db8::3 22
		EPERM h63_23  0 tcp 2001:db8::3 23
		ok    h64_22  1 tcp 2001:db8::4 22
		EPERM h64_443 0 tcp 2001:db8::4 443
	EOF
}

# ---- UDP --------------------------------------------------------------------

test_udp_unconnected() {
	setup || return
	listen_udp "$NS_S" 198.18.0.2 5000 ok2 || return
	listen_udp "$NS_S" 198.18.0.3 5000 no3 || return
	run_table "--allow 198.18.0.2:5000/udp" <<-EOF
		ok    ok2 1 udp-sendto  198.18.0.2 5000 --send hello
		ok    ok2 2 udp-sendmsg 198.18.0.2 5000 --send hello
		EPERM no3 0 udp-sendto  198.18.0.3 5000 --send hello
		EPERM no3 0 udp-sendmsg 198.18.0.3 5000 --send hello
	EOF
	assert_match 'denied udp 198\.18\.0\.3:5000 \(sendmsg4\)' "$ERR" "deny line"
	assert_eq "datagrams=2 bytes=10" "$(cat "$WORK/ok2.count")" "allowed datagrams"
	assert_eq "datagrams=0 bytes=0" "$(cat "$WORK/no3.count")" "denied datagrams"
}

test_udp_sendmmsg_mixed_batch() {
	setup || return
	listen_udp "$NS_S" 198.18.0.2 5000 ok2 || return
	listen_udp "$NS_S" 198.18.0.3 5000 no3 || return
	# allowed first: only the allowed prefix of the batch is sent
	fence --allow 198.18.0.2:5000/udp -- "$PROBE" udp-sendmmsg 198.18.0.2 5000 198.18.0.3 5000
	assert_eq "ok sent=1" "$OUT" "sendmmsg allowed, denied"
	expect_units ok2 1 "sendmmsg allowed, denied"
	# denied first: nothing is sent at all
	fence --allow 198.18.0.2:5000/udp -- "$PROBE" udp-sendmmsg 198.18.0.3 5000 198.18.0.2 5000
	assert_eq "$DENIED" "$OUT" "sendmmsg denied, allowed"
	expect_units ok2 1 "sendmmsg denied, allowed"
	expect_units no3 0 "sendmmsg"
	# both allowed
	fence --allow 198.18.0.2:5000/udp --allow 198.18.0.3:5000/udp -- \
		"$PROBE" udp-sendmmsg 198.18.0.2 5000 198.18.0.3 5000
	assert_eq "ok sent=2" "$OUT" "sendmmsg both allowed"
	expect_units ok2 2 "sendmmsg both allowed"
	expect_units no3 1 "sendmmsg both allowed"
}

test_udp_connected() {
	setup || return
	listen_udp "$NS_S" 198.18.0.2 5000 ok2 || return
	listen_udp "$NS_S" 198.18.0.3 5000 no3 || return
	run_table "--allow 198.18.0.2:5000/udp" <<-EOF
		ok    ok2 1 udp-connect 198.18.0.2 5000 --expect-reply
		EPERM no3 0 udp-connect 198.18.0.3 5000
	EOF
	assert_match 'denied udp 198\.18\.0\.3:5000 \(connect4\)' "$ERR" "deny line"
}

# ---- IPv6 and IPv4-mapped IPv6 ---------------------------------------------

test_ipv6() {
	setup || return
	listen_tcp "$NS_S" 2001:db8::2 80 t2 || return
	listen_tcp "$NS_S" 2001:db8::3 80 t3 || return
	listen_udp "$NS_S" 2001:db8::2 5000 u2 || return
	listen_udp "$NS_S" 2001:db8::3 5000 u3 || return
	run_table "--allow [2001:db8::2]:80/tcp --allow [2001:db8::2]:5000/udp" <<-EOF
		ok    t2 1 tcp         2001:db8::2 80 --send hi --expect-reply
		EPERM t3 0 tcp         2001:db8::3 80
		ok    u2 1 udp-sendto  2001:db8::2 5000
		ok    u2 2 udp-sendmsg 2001:db8::2 5000
		ok    u2 3 udp-connect 2001:db8::2 5000 --expect-reply
		EPERM u3 0 udp-sendto  2001:db8::3 5000
		EPERM u3 0 udp-sendmsg 2001:db8::3 5000
		EPERM u3 0 udp-connect 2001:db8::3 5000
		EPERM u2 3 udp-sendmmsg 2001:db8::3 5000 2001:db8::2 5000
	EOF
	fence --allow '[2001:db8::2]:80' -- "$PROBE" tcp 2001:db8::3 80 --timeout-ms 1000
	assert_match '^cgfence: denied tcp \[2001:db8::3\]:80 \(connect6\) pid [0-9]+ \(probe\)$' \
		"$ERR" "IPv6 deny line"
	fence --allow '[2001:db8::2]:80' -- "$PROBE" udp-sendto 2001:db8::3 5000
	assert_match 'denied udp \[2001:db8::3\]:5000 \(sendmsg6\)' "$ERR" "IPv6 UDP deny line"
}

test_ipv4_mapped_ipv6() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.3 80 t3 || return
	listen_udp "$NS_S" 198.18.0.3 5000 u3 || return
	# 198.18.0.3 not allowed: every IPv6-socket way to it is refused
	run_table "--allow 198.18.0.2" <<-EOF
		EPERM t3 0 tcp          ::ffff:198.18.0.3 80
		EPERM t3 0 tcp-fastopen ::ffff:198.18.0.3 80 --send x
		EPERM u3 0 udp-sendto   ::ffff:198.18.0.3 5000
		EPERM u3 0 udp-sendmsg  ::ffff:198.18.0.3 5000
		EPERM u3 0 udp-connect  ::ffff:198.18.0.3 5000
		EPERM u3 0 udp6-af4     198.18.0.3 5000
	EOF
	fence --allow 198.18.0.2 -- "$PROBE" tcp ::ffff:198.18.0.3 80 --timeout-ms 1000
	assert_match 'denied tcp 198\.18\.0\.3:80 \(connect6\)' "$ERR" "mapped address judged as IPv4"
	# an IPv6 rule that is not the mapped address allows nothing of it
	run_table "--allow [2001:db8::/32]" <<-EOF
		EPERM t3 0 tcp ::ffff:198.18.0.3 80
	EOF
	# 198.18.0.3 allowed (as IPv4): the mapped forms pass
	run_table "--allow 198.18.0.3:80/tcp --allow 198.18.0.3:5000/udp" <<-EOF
		ok t3 1 tcp         ::ffff:198.18.0.3 80 --send hi --expect-reply
		ok u3 1 udp-sendto  ::ffff:198.18.0.3 5000
		ok u3 2 udp-connect ::ffff:198.18.0.3 5000 --expect-reply
		ok u3 3 udp6-af4    198.18.0.3 5000
	EOF
}

# ---- raw sockets, ICMP ------------------------------------------------------

test_icmp_raw_and_ping_denied() {
	setup || return
	listen_icmp "$NS_S" 198.18.0.3 icmp4 || return
	listen_icmp "$NS_S" 2001:db8::3 icmp6 || return
	local kind addr name before
	for kind in raw-icmp ping; do
		for addr in 198.18.0.3 2001:db8::3; do
			case $addr in *:*) name=icmp6 ;; *) name=icmp4 ;; esac
			# unfenced, the echo request arrives: the listener works
			before=$(units "$name")
			OUT=$(in_client "$PROBE" "$kind" "$addr" --timeout-ms 1000)
			assert_match '^ok' "$OUT" "unfenced $kind $addr"
			before=$((before + 1))
			expect_units "$name" "$before" "unfenced $kind $addr"
			# fenced, with every TCP/UDP port of the host allowed: nothing
			# --keep-cap net_raw: raw sockets at all (run drops it)
			fence --keep-cap net_raw --allow 198.18.0.3 --allow '[2001:db8::3]' -- \
				"$PROBE" "$kind" "$addr" --timeout-ms 1000
			if [ "$kind:$addr" = "ping:2001:db8::3" ]; then
				# An IPv6 ping socket drops the error of its own send
				# (icmpv6_push_pending_frames returns nothing): the
				# datagram is dropped, yet sendto() reports success.
				assert_match "^(ok|$DENIED)" "$OUT" "fenced $kind $addr"
			else
				assert_eq "$DENIED" "$OUT" "fenced $kind $addr"
			fi
			assert_match "denied icmp(v6)? $addr \(egress\)" "$ERR" "fenced $kind $addr: deny line"
			expect_units "$name" "$before" "fenced $kind $addr"
		done
	done
}

# ---- sources that are not the host's ------------------------------------------

# IP_FREEBIND and IPV6_FREEBIND need no capability, and an IPv6 socket with
# one sends from any address it binds: to an allowed host that answers (the
# listeners here echo), or past a router that returns an ICMP error quoting
# the datagram, a forged source carries data to a denied address; a connect()
# from one makes the listener send its SYN-ACK there.  The kernel checks the
# option only at bind(): turned off again once bound, the forged source stays
# (-toggle); and a 32-bit process sets it past every setsockopt hook.
# Unfenced the forged datagram (the SYN-ACK) arrives: the vector works here.
# Fenced, egress drops what such a socket sends over IPv6: all of its TCP and
# UDP while the option is on, and from a source that is not an address of
# the namespace once it is off, with a deny line that says why; nothing
# arrives.
synack_seen() { [ "$(units synack)" -ge 1 ]; }

test_foreign_source_refused() {
	setup || return
	listen_udp "$NS_S" 2001:db8::2 5000 f6 || return
	listen_udp "$NS_S" 198.18.0.2 5000 f4 || return
	listen_tcp "$NS_S" 2001:db8::2 5001 t6 || return
	# copies of the TCP that reaches the forged source: the SYN-ACKs
	nsenter --net="/run/netns/$NS_S" -- "$PROBE" listen-raw 6 2001:db8::3 \
		--count-file "$WORK/synack.count" --max-seconds 300 >/dev/null 2>&1 &
	echo $! >>"$WORK/pids"
	wait_file "$WORK/synack.count" 5 || { fail "listener synack did not start"; return 1; }
	local how reason hows="ipv6-freebind ip-freebind ipv6-transparent ipv6-freebind-toggle" n=0 synacks
	OUT=$(in_client "$PROBE" udp-forged ipv6-freebind-ia32 2001:db8::3 2001:db8::2 5000)
	if [ "$OUT" = "error ENOSYS" ]; then
		echo "    note: no IA-32 emulation in this kernel: the 32-bit setsockopt() ways are n/a" >&2
	else
		assert_match '^ok' "$OUT" "unfenced udp-forged ipv6-freebind-ia32"
		n=$((n + 1))
		expect_units f6 "$n" "unfenced udp-forged ipv6-freebind-ia32"
		hows="$hows ipv6-freebind-ia32 ipv6-freebind-ia32-toggle"
	fi
	for how in $hows; do
		OUT=$(in_client "$PROBE" udp-forged "$how" 2001:db8::3 2001:db8::2 5000)
		assert_match '^ok' "$OUT" "unfenced udp-forged $how: from 2001:db8::3, not the client's"
		n=$((n + 1))
		expect_units f6 "$n" "unfenced udp-forged $how"
	done
	in_client "$PROBE" tcp-forged ipv6-freebind-toggle 2001:db8::3 2001:db8::2 5001 --timeout-ms 500 >/dev/null
	wait_for 2 synack_seen ||
		fail "unfenced tcp-forged: no SYN-ACK reached 2001:db8::3 (the vector does not work here)"
	synacks=$(units synack)
	for how in $hows; do
		case $how in
		*-toggle) reason='source not an address of this host' ;;
		*) reason='its socket may send from any address' ;;
		esac
		# --keep-cap net_raw: the transparent way needs it, so that only the fence refuses it
		fence --keep-cap net_raw --allow '[2001:db8::2]:5000/udp' -- \
			"$PROBE" udp-forged "$how" 2001:db8::3 2001:db8::2 5000 --timeout-ms 1000
		expect_result "$DENIED" "fenced udp-forged $how from 2001:db8::3"
		assert_match "^cgfence: denied udp \\[2001:db8::2\\]:5000 \\(egress: $reason\\) pid [0-9]+ \\(probe\\)\$" \
			"$ERR" "fenced udp-forged $how: egress's deny line, with its reason"
		fence --keep-cap net_raw --allow '[2001:db8::2]:5001/tcp' -- \
			"$PROBE" tcp-forged "$how" 2001:db8::3 2001:db8::2 5001 --timeout-ms 1000
		# egress drops the SYN; connect() waits for an answer that never comes
		expect_result "error ETIMEDOUT" "fenced tcp-forged $how from 2001:db8::3"
		assert_match "^cgfence: denied tcp \\[2001:db8::2\\]:5001 \\(egress: $reason\\) pid [0-9]+ \\(probe\\)\$" \
			"$ERR" "fenced tcp-forged $how: egress's deny line, with its reason"
	done
	expect_units f6 "$n" "fenced udp-forged"
	assert_eq "$synacks" "$(units synack)" "fenced tcp-forged: SYN-ACKs that reached 2001:db8::3"
	assert_eq 0 "$(units t6)" "tcp-forged: connections the listener accepted"
	# A source of the host's own, bound by bind(), is checked and passes.
	fence --allow '[2001:db8::2]:5000/udp' -- "$PROBE" udp-forged none 2001:db8::1 2001:db8::2 5000
	expect_result ok "fenced udp from 2001:db8::1, bound"
	n=$((n + 1))
	expect_units f6 "$n" "fenced udp from 2001:db8::1, bound"
	fence --allow '[2001:db8::2]:5001/tcp' -- "$PROBE" tcp-forged none 2001:db8::1 2001:db8::2 5001
	expect_result ok "fenced tcp from 2001:db8::1, bound"
	# IPv4 routes from a foreign source only for a transparent socket
	# (CAP_NET_RAW or CAP_NET_ADMIN, which forge with a raw socket anyway:
	# the boundary's case); a freebind socket cannot send from one at all.
	OUT=$(in_client "$PROBE" udp-forged ip-freebind 198.18.0.3 198.18.0.2 5000)
	assert_eq "error ENETUNREACH" "$OUT" "unfenced udp-forged ip-freebind from 198.18.0.3"
	fence --allow 198.18.0.2:5000/udp -- "$PROBE" udp-forged ip-freebind 198.18.0.3 198.18.0.2 5000
	expect_result "error ENETUNREACH" "fenced udp-forged ip-freebind from 198.18.0.3"
	expect_units f4 0 "udp-forged ip-freebind (IPv4)"
	# net.ipv6.ip_nonlocal_bind lets every socket of the namespace bind any
	# address, no option needed: egress drops the IPv6 TCP and UDP of a fence
	# there (all of it: which source is foreign it cannot tell), until it is 0
	ip netns exec "$NS_C" sysctl -qw net.ipv6.ip_nonlocal_bind=1
	OUT=$(in_client "$PROBE" udp-forged none 2001:db8::3 2001:db8::2 5000)
	assert_match '^ok' "$OUT" "unfenced, ip_nonlocal_bind=1: from 2001:db8::3"
	n=$((n + 1))
	expect_units f6 "$n" "unfenced, ip_nonlocal_bind=1"
	fence --allow '[2001:db8::2]:5000/udp' -- \
		"$PROBE" udp-forged none 2001:db8::3 2001:db8::2 5000 --timeout-ms 1000
	expect_result "$DENIED" "fenced, ip_nonlocal_bind=1: from 2001:db8::3"
	assert_match '^cgfence: warning: net\.ipv6\.ip_nonlocal_bind is 1 in this network namespace' \
		"$ERR" "fenced, ip_nonlocal_bind=1: run's warning"
	assert_match '^cgfence: denied udp \[2001:db8::2\]:5000 \(egress: its socket may send from any address\)' \
		"$ERR" "fenced, ip_nonlocal_bind=1: egress's deny line, with its reason"
	fence --allow '[2001:db8::2]:5000/udp' -- "$PROBE" udp-sendto 2001:db8::2 5000 --timeout-ms 1000
	expect_result "$DENIED" "fenced, ip_nonlocal_bind=1: from the client's own address"
	expect_units f6 "$n" "fenced, ip_nonlocal_bind=1"
	ip netns exec "$NS_C" sysctl -qw net.ipv6.ip_nonlocal_bind=0
	fence --allow '[2001:db8::2]:5000/udp' -- "$PROBE" udp-sendto 2001:db8::2 5000 --timeout-ms 1000
	expect_result ok "fenced, ip_nonlocal_bind=0: from the client's own address"
	n=$((n + 1))
	expect_units f6 "$n" "fenced, ip_nonlocal_bind=0"
	# audit mode lets it through, and says what it would have refused
	fence --audit --allow '[2001:db8::2]:5000/udp' -- \
		"$PROBE" udp-forged ipv6-freebind 2001:db8::3 2001:db8::2 5000
	assert_match '^ok' "$OUT" "audit: udp-forged"
	expect_units f6 $((n + 1)) "audit: udp-forged"
	assert_match '^cgfence: audit: would deny udp \[2001:db8::2\]:5000 \(egress: its socket may send from any address\) pid [0-9]+ \(probe\)$' \
		"$ERR" "audit: egress's line, with its reason"
}

# Addresses the namespace lists but a socket may not send from: one whose
# duplicate detection failed (2001:db8::5 is the server's), and a link-local
# address of another device (a veth pair of the client's own).  bind()
# refuses both; with IPV6_FREEBIND turned on, bound and off again, a socket
# gets them anyway, and egress refuses them.
dad_failed() { ip -n "$NS_C" -6 addr show dev "${TAG}a" | grep -q '2001:db8::5/64 .*dadfailed'; }

test_unusable_source_refused() {
	setup || return
	listen_udp "$NS_S" 2001:db8::2 5000 u6 || return
	ip -n "$NS_C" addr add 2001:db8::5/64 dev "${TAG}a" || { fail "adding 2001:db8::5"; return 1; }
	wait_for 5 dad_failed || { fail "2001:db8::5 did not fail duplicate detection"; return 1; }
	ip -n "$NS_C" link add "${TAG}d" type veth peer name "${TAG}e" &&
		ip -n "$NS_C" link set "${TAG}d" up && ip -n "$NS_C" link set "${TAG}e" up &&
		ip -n "$NS_C" addr add fe80::99/64 dev "${TAG}d" nodad ||
		{ fail "a second device with fe80::99"; return 1; }
	local src n=0
	for src in 2001:db8::5 "fe80::99%${TAG}a"; do
		OUT=$(in_client "$PROBE" udp-forged ipv6-freebind-toggle "$src" 2001:db8::2 5000)
		assert_match '^ok' "$OUT" "unfenced from $src"
		n=$((n + 1))
		expect_units u6 "$n" "unfenced from $src"
		fence --allow '[2001:db8::2]:5000/udp' -- \
			"$PROBE" udp-forged ipv6-freebind-toggle "$src" 2001:db8::2 5000 --timeout-ms 1000
		expect_result "$DENIED" "fenced from $src"
		assert_match '^cgfence: denied udp \[2001:db8::2\]:5000 \(egress: source not an address of this host\) pid [0-9]+ \(probe\)$' \
			"$ERR" "fenced from $src: egress's deny line, with its reason"
		expect_units u6 "$n" "fenced from $src"
	done
}

# A source that leaves the namespace after a socket has sent from it: the
# kernel lets the socket go on sending from it, bound (UDP) or connected
# from the source its route gave (TCP), and a uid-0 workload with no
# capability can make its own address go (net sysctls are writable by the
# namespace owner's uid 0).  Egress's verdict for a source is kept with the
# namespace's address generation, so it is taken again.
test_departed_source_refused() {
	setup || return
	listen_udp "$NS_S" 2001:db8::2 5000 u6 || return
	listen_tcp "$NS_S" 2001:db8::2 5001 t6 || return
	# 2001:db8:1::6 on a second device; the server answers it through the client
	ip -n "$NS_C" link add "${TAG}d" type veth peer name "${TAG}e" &&
		ip -n "$NS_C" link set "${TAG}d" up && ip -n "$NS_C" link set "${TAG}e" up &&
		ip -n "$NS_S" -6 route add 2001:db8:1::/64 via 2001:db8::1 ||
		{ fail "a second device"; return 1; }
	cat >"$WORK/depart.py" <<'PY'
import socket, sys, time
how, dev = sys.argv[1], sys.argv[2]
src, dst = "2001:db8:1::6", "2001:db8::2"
said = []
def gone():
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % dev, "w") as f:
        f.write("1")
if how == "tcp":
    # not bound: the route gives the source
    s = socket.create_connection((dst, 5001), timeout=2)
    s.sendall(b"before")
    time.sleep(0.2)
    gone()
    s.sendall(b"after")
    time.sleep(0.5)
    said.append("sent")
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((src, 0))
    for text in (b"before", b"after"):
        try:
            s.sendto(text, (dst, 5000))
            said.append("ok")
        except PermissionError:
            said.append("EPERM")
        if text == b"before":
            gone()
print(" ".join(said))
PY
	local how fenced udp=0
	for how in udp tcp; do
		for fenced in no yes; do
			in_client sysctl -qw "net.ipv6.conf.${TAG}d.disable_ipv6=0"
			ip -n "$NS_C" addr replace 2001:db8:1::6/128 dev "${TAG}d" nodad &&
				ip -n "$NS_C" -6 route replace 2001:db8::2/128 dev "${TAG}a" src 2001:db8:1::6 ||
				{ fail "$how: adding 2001:db8:1::6 and its route"; return 1; }
			if [ $fenced = no ]; then
				OUT=$(in_client timeout 10 python3 "$WORK/depart.py" "$how" "${TAG}d")
			else
				fence --allow '[2001:db8::2]:5000-5001' -- \
					python3 "$WORK/depart.py" "$how" "${TAG}d"
			fi
			case $how:$fenced in
			tcp:no)
				assert_eq sent "$OUT" "$how, unfenced"
				assert_eq "connections=1 bytes=11" "$(cat "$WORK/t6.count")" \
					"$how, unfenced: both writes arrived (the vector works here)" ;;
			tcp:yes)
				assert_eq sent "$OUT" "$how, fenced"
				assert_match '^cgfence: denied tcp \[2001:db8::2\]:5001 \(egress: source not an address of this host\) pid [0-9]+ \(python3\)$' \
					"$ERR" "$how, fenced: egress's deny line, with its reason"
				assert_eq "connections=2 bytes=17" "$(cat "$WORK/t6.count")" \
					"$how, fenced: only what was written before the address went" ;;
			udp:no)
				assert_eq "ok ok" "$OUT" "$how, unfenced: sent before and after"
				udp=$((udp + 2))
				expect_units u6 "$udp" "$how, unfenced: both datagrams arrived" ;;
			udp:yes)
				assert_eq "ok EPERM" "$OUT" "$how, fenced: sent before, refused after"
				assert_match '^cgfence: denied udp \[2001:db8::2\]:5000 \(egress: source not an address of this host\) pid [0-9]+ \(python3\)$' \
					"$ERR" "$how, fenced: egress's deny line, with its reason"
				udp=$((udp + 1))
				expect_units u6 "$udp" "$how, fenced: only the datagram sent before" ;;
			esac
		done
	done
}

test_raw_udp_hdrincl_denied() {
	setup || return
	listen_udp "$NS_S" 198.18.0.2 5000 u2 || return
	listen_udp "$NS_S" 198.18.0.3 5000 u3 || return
	listen_udp "$NS_S" 2001:db8::3 5000 u63 || return
	# unfenced, hand-built datagrams arrive: the listeners work
	OUT=$(in_client "$PROBE" raw-udp 198.18.0.1 198.18.0.3 5000)
	assert_match '^ok' "$OUT" "unfenced raw-udp"
	expect_units u3 1 "unfenced raw-udp"
	OUT=$(in_client "$PROBE" raw6-udp 2001:db8::3 5000)
	assert_match '^ok' "$OUT" "unfenced raw6-udp"
	expect_units u63 1 "unfenced raw6-udp"
	# fenced: judged from the header the program wrote, not from sendto's address
	# (--keep-cap net_raw: cgfence run drops it otherwise, and no raw socket opens)
	run_table "--keep-cap net_raw --allow 198.18.0.2:5000/udp" <<-EOF
		EPERM u3  1 raw-udp 198.18.0.1 198.18.0.3 5000
		EPERM u3  1 raw-udp 198.18.0.1 198.18.0.3 5000 --via 198.18.0.2
		EPERM u3  1 raw-udp 198.18.0.1 198.18.0.3 5000 --via 198.18.0.3
		EPERM u63 1 raw6-udp 2001:db8::3 5000
		ok    u2  1 raw-udp 198.18.0.1 198.18.0.2 5000
	EOF
	fence --keep-cap net_raw --allow 198.18.0.2:5000/udp -- "$PROBE" raw-udp 198.18.0.1 198.18.0.3 5000 \
		--via 198.18.0.2
	assert_match 'denied udp 198\.18\.0\.3:5000 \(egress\)' "$ERR" "raw-udp deny line"
}

# A raw socket's connect() passes no hook, so the destination a raw socket is
# connected to must not count as judged: a connected raw UDP socket sending a
# hand-built UDP header to the address and port it is connected to is judged
# from the header, like any raw packet.
test_raw_socket_connected_denied() {
	setup || return
	listen_udp "$NS_S" 198.18.0.3 5000 u3 || return
	cat >"$WORK/rawconn.py" <<'PY'
import socket, struct, sys
dst, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.connect((dst, port))
payload = b"raw-connected"
# source port, destination port, length, checksum 0 (none, IPv4)
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
try:
    s.send(udp)
    print("ok")
except PermissionError:
    print("error EPERM")
PY
	# unfenced, it arrives: the method works
	OUT=$(in_client python3 "$WORK/rawconn.py" 198.18.0.3 5000)
	assert_eq ok "$OUT" "unfenced connected raw socket"
	expect_units u3 1 "unfenced connected raw socket"
	fence --keep-cap net_raw --allow 198.18.0.2:5000/udp -- python3 "$WORK/rawconn.py" 198.18.0.3 5000
	assert_eq "error EPERM" "$OUT" "fenced connected raw socket"
	expect_units u3 1 "fenced connected raw socket: nothing more arrived"
	assert_match 'denied udp 198\.18\.0\.3:5000 \(egress\)' "$ERR" "deny line"
}

# Broadcast and multicast are destinations like any other: denied unless a
# rule names them.  The broadcast listener, bound to the subnet's broadcast
# address, measures that nothing left; an unfenced send shows it would see one.
test_broadcast_multicast_denied() {
	setup || return
	listen_udp "$NS_S" 198.18.0.255 5000 bc || return
	OUT=$(in_client "$PROBE" udp-broadcast 198.18.0.255 5000 --send x)
	assert_match '^ok' "$OUT" "unfenced broadcast"
	expect_units bc 1 "unfenced broadcast"
	run_table "--allow 198.18.0.2:5000/udp" <<-EOF
		EPERM bc 1 udp-broadcast 198.18.0.255 5000 --send x
		EPERM -  0 udp-multicast 224.0.0.251 5353 --send x --via 198.18.0.1
	EOF
	fence --allow 198.18.0.2:5000/udp -- "$PROBE" udp-multicast 224.0.0.251 5353 --send x --via 198.18.0.1
	assert_match 'denied udp 224\.0\.0\.251:5353 \(sendmsg4\)' "$ERR" "multicast deny line"
	# a rule that names the group allows it
	fence --allow 224.0.0.251:5353/udp -- "$PROBE" udp-multicast 224.0.0.251 5353 --send x --via 198.18.0.1
	assert_match '^ok' "$OUT" "multicast to an allowed group"
}

# ---- TCP Fast Open, io_uring ------------------------------------------------

test_tcp_fastopen() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 a || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	fence --allow 198.18.0.2:80 -- "$PROBE" tcp-fastopen 198.18.0.3 80 --send secret
	assert_eq "$DENIED" "$OUT" "Fast Open to a denied address"
	assert_match 'denied tcp 198\.18\.0\.3:80 \(connect4\)' "$ERR" "Fast Open deny line"
	fence --allow 198.18.0.2:80 -- "$PROBE" tcp-fastopen 198.18.0.2 80 --send hello --expect-reply
	assert_eq "ok sent=5 reply=5" "$OUT" "Fast Open to an allowed address"
	expect_units a 1 "Fast Open allowed"
	expect_units b 0 "Fast Open denied"
	assert_eq "connections=0 bytes=0" "$(cat "$WORK/b.count")" "Fast Open denied: no byte arrived"
}

test_io_uring() {
	setup || return
	if [ "$(sysctl -n kernel.io_uring_disabled 2>/dev/null || echo 0)" = 2 ]; then
		skip "io_uring is disabled (kernel.io_uring_disabled=2)"
		return
	fi
	listen_tcp "$NS_S" 198.18.0.2 80 t2 || return
	listen_tcp "$NS_S" 198.18.0.3 80 t3 || return
	listen_udp "$NS_S" 198.18.0.2 5000 u2 || return
	listen_udp "$NS_S" 198.18.0.3 5000 u3 || return
	listen_udp "$NS_S" 2001:db8::3 5000 u63 || return
	run_table "--allow 198.18.0.2:80/tcp --allow 198.18.0.2:5000/udp" <<-EOF
		ok    t2  1 uring-connect 198.18.0.2 80
		EPERM t3  0 uring-connect 198.18.0.3 80
		EPERM t3  0 uring-connect ::ffff:198.18.0.3 80
		ok    u2  1 uring-sendmsg 198.18.0.2 5000
		EPERM u3  0 uring-sendmsg 198.18.0.3 5000
		EPERM u63 0 uring-sendmsg 2001:db8::3 5000
	EOF
}

# ---- process tree -----------------------------------------------------------

test_children_and_grandchildren_fenced() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 a || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	listen_udp "$NS_S" 198.18.0.3 5000 u || return
	fence --allow 198.18.0.2:80 -- sh -c "
		$PROBE tcp 198.18.0.2 80
		sh -c '$PROBE tcp 198.18.0.3 80 --timeout-ms 1000
			sh -c \"$PROBE udp-sendto 198.18.0.3 5000\"'
		($PROBE tcp 198.18.0.3 80 --timeout-ms 1000 &
		 wait)"
	assert_eq "ok
$DENIED
$DENIED
$DENIED" "$OUT" "child, grandchild, great-grandchild, background child"
	expect_units a 1 "child"
	expect_units b 0 "grandchildren"
	expect_units u 0 "great-grandchild"
}

test_leftover_processes_killed() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	# a grandchild that outlives COMMAND, and would connect later
	start_fence --allow 198.18.0.2:80 -- sh -c "
		sh -c 'sleep 2; $PROBE tcp 198.18.0.3 80 >/dev/null 2>&1' </dev/null >/dev/null 2>&1 &
		echo \$! >$WORK/gc.pid
		exit 3"
	wait_file "$WORK/gc.pid" 5 || { fail "COMMAND did not start"; return; }
	local dir gc id
	dir=$(run_cgroup "$FPID")
	gc=$(cat "$WORK/gc.pid")
	id=$(cgroup_id "$dir" 2>/dev/null)
	finish_fence 10
	assert_eq 3 "$RC" "exit status"
	wait_gone "$gc" 2 || fail "grandchild $gc still runs after cgfence ended"
	[ ! -d "$dir" ] || fail "cgroup $dir still there"
	[ -z "$id" ] || [ ! -e "$PIN_ROOT/$id" ] || fail "pins $PIN_ROOT/$id still there"
	expect_units b 0 "leftover grandchild"
}

# ---- a server inside the fence ----------------------------------------------

test_server_inside_fence() {
	setup || return
	local addr
	for addr in 198.18.0.1 2001:db8::1; do
		rm -f "$WORK/srv.count"
		start_fence --allow 198.18.0.2:9 -- "$PROBE" listen-tcp "$addr" 7000 --echo \
			--max-seconds 10 --count-file "$WORK/srv.count"
		wait_file "$WORK/srv.count" 5 || { fail "fenced listener on $addr did not start"; return; }
		OUT=$(in_server "$PROBE" tcp "$addr" 7000 --send hello --expect-reply)
		assert_eq "ok sent=5 reply=5" "$OUT" "client outside, server inside on $addr"
		expect_units srv 1 "fenced server on $addr"
		kill -TERM "$FPID"
		finish_fence 5
		assert_eq 0 "$RC" "fenced listener on $addr, stopped by SIGTERM"
		assert_match '^ok connections=1 bytes=5' "$OUT" "fenced listener on $addr"
		assert_no_match 'denied' "$ERR" "fenced server on $addr: nothing denied"
	done
}

# ---- domain rules: expiry, resolver ------------------------------------------

test_expired_entries_deny() {
	setup || return
	command -v dnsmasq >/dev/null || { skip "needs dnsmasq"; return; }
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	start_dnsmasq --host-record=svc.test,198.18.0.3 --local-ttl=1 || { fail "dnsmasq"; return; }
	# COMMAND: a connection opened while svc.test resolves, a connect that
	# passes; then (the test stops the DNS server) wait past the TTL: a new
	# connect is refused, the established connection still works.
	cat >"$WORK/expiry.sh" <<-EOF
		exec 3<>/dev/tcp/198.18.0.3/80 || exit 10
		echo first >&3
		read -r -t 2 line <&3 && echo "established: \$line"
		$PROBE tcp 198.18.0.3 80
		touch $WORK/resolved
		i=0
		while [ ! -e $WORK/go ] && [ \$i -lt 100 ]; do sleep 0.05; i=\$((i + 1)); done
		sleep 3
		$PROBE tcp 198.18.0.3 80 --timeout-ms 1000
		echo second >&3
		read -r -t 2 line <&3 && echo "established: \$line"
		exit 0
	EOF
	start_fence --resolver 198.18.0.5 --min-ttl 1 --grace 0 --allow svc.test:80/tcp -- \
		bash "$WORK/expiry.sh"
	wait_file "$WORK/resolved" 5 || fail "the first connects did not happen"
	kill "$DNSMASQ_PID"
	wait_gone "$DNSMASQ_PID" 2 || fail "dnsmasq did not stop"
	touch "$WORK/go"
	finish_fence 15
	assert_eq 0 "$RC" "exit status"
	assert_eq "established: first
ok
$DENIED
established: second" "$OUT" "before expiry / after expiry / established connection"
	assert_match 'denied tcp 198\.18\.0\.3:80 \(connect4\)' "$ERR" "deny line after expiry"
	expect_units b 2 "connections before expiry"
}

# Without anyone to refresh or sync the map (`attach` resolves once, no
# daemon), only the programs' own expiry check ends a domain's entry.
test_entry_expiry_checked_in_kernel() {
	setup || return
	command -v dnsmasq >/dev/null || { skip "needs dnsmasq"; return; }
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	start_dnsmasq --host-record=svc.test,198.18.0.3 --local-ttl=1 || { fail "dnsmasq"; return; }
	local dir=$CG2/$TAG-expiry id out i left
	mkdir "$dir" || { fail "cannot create cgroup $dir"; return; }
	id=$(cgroup_id "$dir")
	# the resolver must be reached from the test network: attach from there
	out=$(in_client "$CGFENCE" attach --cgroup "$dir" --resolver 198.18.0.5 \
		--allow svc.test:80/tcp 2>&1)
	assert_eq 0 "$?" "attach ($out)"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.3 80)
	assert_match '^ok' "$OUT" "while the answer is fresh"
	expect_units b 1 "while the answer is fresh"
	# TTL 1 s, clamped to attach's defaults: min TTL 10 s + grace 5 s
	for i in $(seq 1 40); do
		left=$("$CGFENCE" status --json | python3 -c '
import json, sys
for f in json.load(sys.stdin)["fences"]:
    if f["cgroup_id"] == int(sys.argv[1]):
        for e in f["allowlist"]:
            if e["prefix"] == "198.18.0.3/32":
                print(e["allow"][0]["expires_in_s"])' "$id")
		[ "$left" = 0 ] && break
		sleep 0.5
	done
	[ "$left" = 0 ] || { fail "the entry did not come near its expiry (expires_in_s=$left)"; return; }
	sleep 1.2
	assert_match '198\.18\.0\.3/32 +tcp 80 \(expired\)' "$("$CGFENCE" status)" "status: expired entry"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.3 80 --timeout-ms 1000)
	assert_eq "$DENIED" "$OUT" "after expiry, entry still in the map"
	expect_units b 1 "after expiry"
	"$CGFENCE" detach --cgroup "$dir" >/dev/null || fail "detach"
}

test_resolver_allowed_on_its_port_only() {
	setup || return
	listen_udp "$NS_S" 198.18.0.5 53 d53 || return
	listen_tcp "$NS_S" 198.18.0.5 53 t53 || return
	listen_udp "$NS_S" 198.18.0.5 80 d80 || return
	listen_udp "$NS_S" 198.18.0.5 5353 d5353 || return
	run_table "--resolver 198.18.0.5" <<-EOF
		ok    d53   1 udp-sendto 198.18.0.5 53
		ok    t53   1 tcp        198.18.0.5 53
		EPERM d80   0 udp-sendto 198.18.0.5 80
		EPERM d5353 0 udp-sendto 198.18.0.5 5353
	EOF
	# a resolver on another port is allowed there, and not on 53
	run_table "--resolver 198.18.0.5:5353" <<-EOF
		ok    d5353 1 udp-sendto 198.18.0.5 5353
		EPERM d53   1 udp-sendto 198.18.0.5 53
	EOF
}

# ---- audit, quiet -----------------------------------------------------------

test_audit_mode() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	listen_udp "$NS_S" 198.18.0.3 5000 u || return
	fence --audit --allow 198.18.0.2:80 -- "$PROBE" tcp 198.18.0.3 80 --send hi --expect-reply
	assert_eq "ok sent=2 reply=2" "$OUT" "audit: denied destination delivered"
	expect_units b 1 "audit tcp"
	assert_match '^cgfence: audit: would deny tcp 198\.18\.0\.3:80 \(connect4\) pid [0-9]+ \(probe\)$' \
		"$ERR" "audit line"
	assert_no_match 'cgfence: denied' "$ERR" "audit: no deny line"
	fence --audit --allow 198.18.0.2:80 -- "$PROBE" udp-sendto 198.18.0.3 5000
	assert_match '^ok' "$OUT" "audit udp"
	expect_units u 1 "audit udp"
	assert_match 'cgfence: audit: would deny udp 198\.18\.0\.3:5000 \(sendmsg4\)' "$ERR" "audit udp line"
}

# --user: COMMAND as another user, so that it cannot write what root outside
# the fence runs (without it, uid 0 keeps CAP_DAC_OVERRIDE and owns the
# host's files), and with no_new_privs, so that a setuid-root program does
# not make it root again.  Each outcome is first shown the other way.
test_run_user() {
	setup || return
	local dir=$WORK/user
	mkdir -p "$dir" && chmod 755 "$WORK" "$dir" &&
		install -m 0600 /dev/null "$dir/root-only" &&
		install -m 4755 "$(command -v id)" "$dir/suid-id" ||
		{ fail "preparing $dir"; return 1; }
	# as root: the warning, and the root-only file is written
	fence --allow 198.18.0.2:80 -- sh -c "echo root >'$dir/root-only' && echo wrote"
	assert_eq wrote "$OUT" "as root: COMMAND wrote a root-only file"
	assert_match '^cgfence: warning: COMMAND runs as root: the fence holds its network, not its files' \
		"$ERR" "as root: the warning"
	# the setuid copy works where no_new_privs is not set
	OUT=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$dir/suid-id" -u)
	assert_eq 0 "$OUT" "unfenced: a setuid-root program runs as root"
	fence --user nobody --allow 198.18.0.2:80 -- sh -c \
		"id -u; id -g; id -G; grep -E '^(NoNewPrivs|CapEff):' /proc/self/status | tr -s '\t' ' '; '$dir/suid-id' -u; echo nobody >'$dir/root-only' || echo refused"
	assert_eq "65534
65534
65534
CapEff: 0000000000000000
NoNewPrivs: 1
65534
refused" "$OUT" "--user nobody: uid, gid, groups, capabilities, no_new_privs, setuid, write"
	assert_eq root "$(cat "$dir/root-only")" "--user nobody: the root-only file is unchanged"
	assert_no_match 'warning: COMMAND runs as root' "$ERR" "--user nobody: no warning"
	# still fenced: the denied address is refused
	listen_tcp "$NS_S" 198.18.0.3 80 t3 || return
	fence --user 65534:65534 --allow 198.18.0.2:80 -- "$PROBE" tcp 198.18.0.3 80 --timeout-ms 1000
	expect_result "$DENIED" "--user 65534:65534: 198.18.0.3 denied"
	expect_units t3 0 "--user 65534:65534: nothing reached 198.18.0.3"
	# a kept capability stays, as an ambient one (CAP_NET_RAW is bit 13)
	fence --user nobody --keep-cap net_raw --allow 198.18.0.2:80 -- \
		sh -c "grep -E '^Cap(Eff|Amb):' /proc/self/status | tr -s '\t' ' '"
	assert_eq "CapEff: 0000000000002000
CapAmb: 0000000000002000" "$OUT" "--user nobody --keep-cap net_raw"
	# a uid and a group that differ, and no other groups: all three ids each
	fence --user 65534:4242 --allow 198.18.0.2:80 -- \
		sh -c "grep -E '^(Uid|Gid|Groups):' /proc/self/status | tr -s '\t' ' '"
	assert_eq "Uid: 65534 65534 65534 65534
Gid: 4242 4242 4242 4242
Groups: 4242 " "$OUT" "--user 65534:4242: real, effective, saved and fs ids, groups"
	# Landlock: no ptrace of a process outside the fence, not even one of
	# its own uid with no capabilities (pidfd_getfd would hand over its
	# sockets, which the fence does not judge)
	cat >"$dir/steal.py" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, int(sys.argv[1]), 0)  # pidfd_open
fd = libc.syscall(438, pidfd, 0, 0) if pidfd >= 0 else -1  # pidfd_getfd: its fd 0
print("took its fd 0" if fd >= 0 else "refused: " + os.strerror(ctypes.get_errno()))
PY
	chmod 644 "$dir/steal.py"
	setpriv --reuid 65534 --regid 65534 --clear-groups sleep 60 </dev/null >/dev/null 2>&1 &
	local victim=$!
	echo "$victim" >>"$WORK/pids"
	OUT=$(setpriv --reuid 65534 --regid 65534 --clear-groups /usr/bin/python3 "$dir/steal.py" "$victim")
	assert_eq "took its fd 0" "$OUT" "unfenced nobody: pidfd_getfd from another nobody process"
	fence --user nobody --allow 198.18.0.2:80 -- /usr/bin/python3 "$dir/steal.py" "$victim"
	assert_eq "refused: Operation not permitted" "$OUT" "--user nobody: pidfd_getfd outside the fence"
	fence --allow 198.18.0.2:80 -- /usr/bin/python3 "$dir/steal.py" "$victim"
	assert_eq "refused: Operation not permitted" "$OUT" "as root: pidfd_getfd outside the fence"
	kill "$victim" 2>/dev/null
	# the Landlock domain takes nothing a command needs: renames and links
	# across directories, a mount in a user namespace of its own
	if [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" = 1 ]; then
		install -d -o 65534 -g 65534 "$dir/nobody" || { fail "a directory for nobody"; return 1; }
		fence --user nobody --allow 198.18.0.2:80 -- sh -c \
			"cd '$dir/nobody' && mkdir -p a b && touch a/x && mv a/x b/y && ln b/y a/z && echo moved; unshare -rm sh -c 'mount -t tmpfs t /mnt && echo mounted'"
		assert_eq "moved
mounted" "$OUT" "--user nobody: rename and link across directories, a mount in its own namespaces"
	fi
	# no TIOCSTI into the terminal cgfence runs on (a seccomp filter), which
	# stays COMMAND's controlling terminal: /dev/tty opens
	if [ "$(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null || echo 1)" = 1 ]; then
		local push="import fcntl, os, termios
os.close(os.open('/dev/tty', os.O_RDWR))
try:
    fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('pushed')
except OSError as e:
    print('refused')"
		OUT=$(python3 "$ONPTY" setpriv --reuid 65534 --regid 65534 --clear-groups \
			/usr/bin/python3 -c "$push")
		assert_eq "pushed status=0" "$OUT" "unfenced nobody on root's terminal: TIOCSTI"
		OUT=$(python3 "$ONPTY" nsenter --net="/run/netns/$NS_C" -- "$CGFENCE" run \
			--user nobody --allow 198.18.0.2:80 -- /usr/bin/python3 -c "$push")
		assert_eq "refused status=0" "$OUT" "--user nobody on root's terminal: TIOCSTI"
		OUT=$(python3 "$ONPTY" nsenter --net="/run/netns/$NS_C" -- "$CGFENCE" run \
			--allow 198.18.0.2:80 -- /usr/bin/python3 -c "$push")
		assert_eq "refused status=0" "$OUT" "root on root's terminal: TIOCSTI"
	else
		echo "    note: dev.tty.legacy_tiocsti is 0 here: no TIOCSTI to refuse" >&2
	fi
	# refused before anything is made, naming the input
	local spec
	for spec in no-such-user-here 4242 nobody:no-such-group nobody: : 4294967295 nobody:-1; do
		fence --user "$spec" --allow 198.18.0.2:80 -- true
		assert_eq 125 "$RC" "--user '$spec': exit status"
		assert_match "^cgfence: --user '[^']*': " "$ERR" "--user '$spec': the reason"
	done
}

# A Ctrl-C on the terminal reaches COMMAND as it would without cgfence, and
# is no request to end it: a COMMAND that handles it (a shell, a debugger)
# goes on, past the 10 s after which cgfence kills what does not end.
test_run_terminal_interrupt() {
	setup || return
	local cmd="import signal, time
signal.signal(signal.SIGINT, lambda *a: print('INT', flush=True))
print('ready', flush=True)
time.sleep(12.5)
print('done', flush=True)"
	OUT=$(timeout 40 python3 "$ONPTY" --ctrl-c nsenter --net="/run/netns/$NS_C" -- "$CGFENCE" run \
		--user nobody --allow 198.18.0.2:80 -- /usr/bin/python3 -c "$cmd")
	assert_eq "ready INT done status=0" "$OUT" "a handled Ctrl-C: COMMAND goes on and ends by itself"
}

test_quiet() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	# --user: as root, COMMAND's warning would be on stderr
	fence --quiet --user nobody --allow 198.18.0.2:80 -- "$PROBE" tcp 198.18.0.3 80 --timeout-ms 1000
	assert_eq "$DENIED" "$OUT" "quiet: still denied"
	assert_eq "" "$ERR" "quiet: nothing on stderr"
	expect_units b 0 "quiet"
}

# ---- exit status ------------------------------------------------------------

test_exit_status() {
	setup || return
	printf '#!/bin/sh\necho ran\n' >"$WORK/notexec"
	chmod 644 "$WORK/notexec"
	fence -- sh -c 'exit 7'
	assert_eq 7 "$RC" "exit 7 (stderr: $ERR)"
	fence -- true
	assert_eq 0 "$RC" "true (stderr: $ERR)"
	fence -- sh -c 'kill -9 $$'
	assert_eq 137 "$RC" "killed by SIGKILL (stderr: $ERR)"
	fence -- sh -c 'kill -TERM $$'
	assert_eq 143 "$RC" "killed by SIGTERM (stderr: $ERR)"
	fence -- "$WORK/no-such-command"
	assert_eq 127 "$RC" "command not found"
	assert_match "cannot run '$WORK/no-such-command'" "$ERR" "command not found: message"
	fence -- no-such-command-in-path-$$
	assert_eq 127 "$RC" "command not found in PATH"
	fence -- "$WORK/notexec"
	assert_eq 126 "$RC" "not executable"
	assert_eq "" "$OUT" "not executable: nothing ran"
	assert_match "cannot run '$WORK/notexec': Permission denied" "$ERR" "not executable: message"
}

test_bad_rule_runs_nothing() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 a || return
	local pins_before
	pins_before=$(ls "$PIN_ROOT" 2>/dev/null | wc -l)
	fence --allow 198.18.0.2:80 --allow 198.18.0.300:80 -- "$PROBE" tcp 198.18.0.2 80
	assert_eq 125 "$RC" "bad address: exit status"
	assert_eq "" "$OUT" "bad address: COMMAND did not run"
	assert_match "column 10" "$ERR" "bad address: column"
	assert_match "198\.18\.0\.300" "$ERR" "bad address: names it"
	fence --allow 198.18.0.2:80/icmp -- "$PROBE" tcp 198.18.0.2 80
	assert_eq 125 "$RC" "bad protocol: exit status"
	assert_match "column 15.*'icmp'" "$ERR" "bad protocol: column and what"
	printf '# test policy\n198.18.0.2:80\n198.18.0.2:99999\n' >"$WORK/bad.policy"
	fence --policy-file "$WORK/bad.policy" -- "$PROBE" tcp 198.18.0.2 80
	assert_eq 125 "$RC" "bad policy file: exit status"
	assert_match "$WORK/bad\.policy:3:12: .*99999" "$ERR" "bad policy file: file:line:column"
	fence --allow 198.18.0.2:80 --min-ttl 20 --max-ttl 10 -- "$PROBE" tcp 198.18.0.2 80
	assert_eq 125 "$RC" "min-ttl > max-ttl"
	fence --
	assert_eq 125 "$RC" "no COMMAND"
	expect_units a 0 "nothing ran"
	# nothing created: finish_fence checked the cgroup; no new pins either
	# (another suite may attach meanwhile, so only a rise is a failure)
	[ "$(ls "$PIN_ROOT" 2>/dev/null | wc -l)" -le "$pins_before" ] || fail "pins appeared under $PIN_ROOT"
}

# ---- nothing left behind ----------------------------------------------------

# running_fence_state: while the current run is going, checks that its cgroup
# and pins exist and sets DIR and ID.
running_fence_state() {
	DIR=$(run_cgroup "$FPID")
	ID=$(cgroup_id "$DIR" 2>/dev/null)
	[ -n "$ID" ] || { fail "no cgroup $DIR while COMMAND runs"; return 1; }
	[ -e "$PIN_ROOT/$ID/link_connect4" ] || fail "no pins in $PIN_ROOT/$ID while COMMAND runs"
	"$CGFENCE" status --json | python3 -c '
import json, sys
ids = [f["cgroup_id"] for f in json.load(sys.stdin)["fences"]]
sys.exit(0 if int(sys.argv[1]) in ids else 1)' "$ID" || fail "status does not list cgroup $ID"
}

# nothing_left WHAT: the cgroup, its pins and the background grandchild are gone.
nothing_left() {
	[ ! -e "$DIR" ] || fail "$1: cgroup $DIR left behind"
	[ ! -e "$PIN_ROOT/$ID" ] || fail "$1: pins $PIN_ROOT/$ID left behind"
	[ ! -e "$PIN_ROOT/${ID}_new" ] || fail "$1: pins $PIN_ROOT/${ID}_new left behind"
	if [ -f "$WORK/gc.pid" ]; then
		wait_gone "$(cat "$WORK/gc.pid")" 2 || fail "$1: a process of the fence still runs"
	fi
	"$CGFENCE" status --json | python3 -c '
import json, sys
ids = [f["cgroup_id"] for f in json.load(sys.stdin)["fences"]]
sys.exit(1 if int(sys.argv[1]) in ids else 0)' "$ID" || fail "$1: status still lists cgroup $ID"
}

test_run_leaves_nothing_behind() {
	setup || return
	local wait_go="i=0; while [ ! -e $WORK/go ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done"

	# normal exit
	rm -f "$WORK/go" "$WORK/started" "$WORK/gc.pid"
	start_fence --allow 198.18.0.2:80 -- sh -c "touch $WORK/started; $wait_go; exit 0"
	wait_file "$WORK/started" 5 || { fail "COMMAND did not start"; return; }
	running_fence_state || return
	touch "$WORK/go"
	finish_fence 10
	assert_eq 0 "$RC" "normal exit: status"
	nothing_left "normal exit"

	# COMMAND killed by a signal, leaving a background child
	rm -f "$WORK/go" "$WORK/started" "$WORK/gc.pid"
	start_fence --allow 198.18.0.2:80 -- sh -c "
		sleep 30 </dev/null >/dev/null 2>&1 & echo \$! >$WORK/gc.pid
		touch $WORK/started; $wait_go; kill -KILL \$\$"
	wait_file "$WORK/started" 5 || { fail "COMMAND did not start"; return; }
	running_fence_state || return
	touch "$WORK/go"
	finish_fence 10
	assert_eq 137 "$RC" "COMMAND killed: status"
	nothing_left "COMMAND killed by SIGKILL"

	# cgfence itself gets SIGTERM while COMMAND (and a child of it) runs
	rm -f "$WORK/go" "$WORK/started" "$WORK/gc.pid"
	start_fence --allow 198.18.0.2:80 -- sh -c "
		sleep 30 </dev/null >/dev/null 2>&1 & echo \$! >$WORK/gc.pid
		touch $WORK/started; wait"
	wait_file "$WORK/started" 5 || { fail "COMMAND did not start"; return; }
	running_fence_state || return
	local t0=$SECONDS
	kill -TERM "$FPID"
	finish_fence 5
	[ $((SECONDS - t0)) -le 5 ] || fail "SIGTERM: cgfence took $((SECONDS - t0)) s to end"
	assert_eq 143 "$RC" "SIGTERM: status (COMMAND ended by the SIGTERM passed on)"
	nothing_left "cgfence got SIGTERM"
}

# COMMAND ignores the SIGTERM cgfence passes on: SIGKILL after 10 s.
test_sigterm_ignored_by_command() {
	setup || return
	rm -f "$WORK/started" "$WORK/gc.pid"
	start_fence --allow 198.18.0.2:80 -- sh -c "trap '' TERM; touch $WORK/started; sleep 30"
	wait_file "$WORK/started" 5 || { fail "COMMAND did not start"; return; }
	running_fence_state || return
	local t0=$SECONDS
	kill -TERM "$FPID"
	finish_fence 15
	[ $((SECONDS - t0)) -le 13 ] || fail "cgfence took $((SECONDS - t0)) s to end"
	assert_eq 137 "$RC" "COMMAND killed after ignoring SIGTERM"
	nothing_left "COMMAND ignored SIGTERM"
}

# cgfence killed outright cannot clean up; the fence must stay (fail closed):
# the links are pinned, COMMAND stays fenced.
test_fence_outlives_killed_cgfence() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 a || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	rm -f "$WORK/go" "$WORK/started" "$WORK/done"
	start_fence --allow 198.18.0.2:80 -- sh -c "
		touch $WORK/started
		i=0; while [ ! -e $WORK/go ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
		$PROBE tcp 198.18.0.3 80 --timeout-ms 1000 >$WORK/after-kill.denied
		$PROBE tcp 198.18.0.2 80 >$WORK/after-kill.allowed
		touch $WORK/done"
	wait_file "$WORK/started" 5 || { fail "COMMAND did not start"; return; }
	running_fence_state || return
	kill -KILL "$FPID"
	wait_gone "$FPID" 5 || fail "cgfence survived SIGKILL"
	touch "$WORK/go"
	wait_file "$WORK/done" 10 || fail "COMMAND did not finish"
	assert_eq "$DENIED" "$(cat "$WORK/after-kill.denied" 2>/dev/null)" "denied after cgfence died"
	assert_match '^ok' "$(cat "$WORK/after-kill.allowed" 2>/dev/null)" "allowed after cgfence died"
	expect_units a 1 "after cgfence died"
	expect_units b 0 "after cgfence died"
	# what the suite's cleanup would do: kill, remove the cgroup, unpin
	remove_cgroup "$DIR"
	[ ! -e "$DIR" ] && [ ! -e "$PIN_ROOT/$ID" ] || fail "cleanup after a killed cgfence"
}

# ---- attach, status, detach -------------------------------------------------

test_attach_status_detach() {
	setup || return
	listen_tcp "$NS_S" 198.18.0.2 80 a || return
	listen_tcp "$NS_S" 198.18.0.3 80 b || return
	local dir=$CG2/$TAG-attach id out
	mkdir "$dir" || { fail "cannot create cgroup $dir"; return; }
	id=$(cgroup_id "$dir")

	out=$("$CGFENCE" attach --cgroup "$dir" --allow 198.18.0.2:80 2>&1)
	assert_eq 0 "$?" "attach: status ($out)"
	assert_match "^fenced $dir \(cgroup id $id, 1 IPv4 and 0 IPv6 entries\)" "$out" "attach output"
	[ -e "$PIN_ROOT/$id/link_connect4" ] || fail "attach: no pins in $PIN_ROOT/$id"

	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.2 80)
	assert_match '^ok' "$OUT" "attached: allowed"
	expect_units a 1 "attached: allowed"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.3 80 --timeout-ms 1000)
	assert_eq "$DENIED" "$OUT" "attached: denied"
	expect_units b 0 "attached: denied"
	# a sub-cgroup is fenced too
	mkdir "$dir/sub" || fail "cannot create $dir/sub"
	OUT=$(in_cgroup "$dir/sub" "$PROBE" udp-sendto 198.18.0.3 5000)
	assert_eq "$DENIED" "$OUT" "attached: sub-cgroup denied"
	rmdir "$dir/sub"

	out=$("$CGFENCE" status)
	assert_match "$dir \(cgroup id $id\), enforcing" "$out" "status"
	assert_match "198\.18\.0\.2/32 +tcp\+udp 80" "$out" "status: allowlist"
	"$CGFENCE" status --json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
mine = [f for f in doc["fences"] if f["cgroup_id"] == int(sys.argv[1])]
assert len(mine) == 1, "fence not listed once: %r" % mine
f = mine[0]
assert f["cgroup"] == sys.argv[2], f["cgroup"]
assert f["mode"] == "enforce", f["mode"]
assert f["ipv4_entries"] == 1 and f["ipv6_entries"] == 0, f
assert f["allowlist"][0]["prefix"] == "198.18.0.2/32", f["allowlist"]
r = f["allowlist"][0]["allow"][0]
assert (r["port_lo"], r["port_hi"], sorted(r["protocols"])) == (80, 80, ["tcp", "udp"]), r
c = f["counters"]
assert c["connect4"]["allowed"] >= 1 and c["connect4"]["denied"] >= 1, c
assert c["sendmsg4"]["denied"] >= 1, c
' "$id" "$dir" 2>"$WORK/json.err" || fail "status --json: $(cat "$WORK/json.err")"

	out=$("$CGFENCE" attach --cgroup "$dir" --allow 198.18.0.3:80 2>&1)
	[ $? -ne 0 ] || fail "second attach succeeded"
	assert_match "already fenced" "$out" "second attach"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.3 80 --timeout-ms 1000)
	assert_eq "$DENIED" "$OUT" "second attach changed nothing"

	out=$("$CGFENCE" detach --cgroup "$dir" 2>&1)
	assert_eq 0 "$?" "detach: status ($out)"
	[ ! -e "$PIN_ROOT/$id" ] || fail "detach: pins $PIN_ROOT/$id left"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.3 80)
	assert_match '^ok' "$OUT" "detached: unfenced"
	expect_units b 1 "detached: unfenced"
	"$CGFENCE" status --json | python3 -c '
import json, sys
sys.exit(1 if int(sys.argv[1]) in [f["cgroup_id"] for f in json.load(sys.stdin)["fences"]] else 0)
' "$id" || fail "status still lists the detached cgroup"

	# a bad policy file: named with line and column, nothing attached
	printf '198.18.0.2:80\n# comment\n198.18.0.2:80/icmp\n' >"$WORK/bad.policy"
	out=$("$CGFENCE" attach --cgroup "$dir" --policy-file "$WORK/bad.policy" 2>&1)
	[ $? -ne 0 ] || fail "attach with a bad policy file succeeded"
	assert_match "$WORK/bad\.policy:3:15: .*icmp" "$out" "bad policy file: file:line:column"
	[ ! -e "$PIN_ROOT/$id" ] || fail "bad policy file: pins created"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.3 80)
	assert_match '^ok' "$OUT" "bad policy file: still unfenced"
	expect_units b 2 "bad policy file: still unfenced"
}

# A fence's maps cost kernel memory for what it holds, not for the largest
# allowlist: the exact-address hash maps (whose bucket array is allocated for
# their whole capacity) are sized at attach.  10 prefixes: about 0.8 MiB of
# bytes_memlock over all the fence's maps (64 MiB when they were sized for
# 2,097,152 entries).  CGFENCE_EXACT_CAPACITY, the test knob, is checked.
test_small_fence_memory() {
	setup || return
	local dir=$CG2/$TAG-mem id out i bad total rules=()
	mkdir "$dir" || { fail "cannot create cgroup $dir"; return; }
	id=$(cgroup_id "$dir")
	for i in 2 3 4 5 6 7; do rules+=(--allow "198.18.0.$i:80"); done
	rules+=(--allow 198.18.0.0/24:443 --allow 198.18.1.0/24:443 --allow '[2001:db8::2]:80'
		--allow '[2001:db8::/64]:443')
	for bad in 0 x 2097153 -1; do
		out=$(CGFENCE_EXACT_CAPACITY=$bad "$CGFENCE" attach --cgroup "$dir" "${rules[@]}" 2>&1)
		[ $? -ne 0 ] || { fail "attach with a bad CGFENCE_EXACT_CAPACITY succeeded: $out"; return; }
		assert_match "CGFENCE_EXACT_CAPACITY=.*not a number from 1 to 2097152" "$out" \
			"bad CGFENCE_EXACT_CAPACITY"
		[ ! -e "$PIN_ROOT/$id" ] || fail "bad CGFENCE_EXACT_CAPACITY: pins created"
	done
	out=$(env -u CGFENCE_EXACT_CAPACITY "$CGFENCE" attach --cgroup "$dir" "${rules[@]}" 2>&1)
	assert_eq 0 "$?" "attach: status ($out)"
	assert_match "\(cgroup id $id, 8 IPv4 and 2 IPv6 entries\)" "$out" "attach output"
	for i in exact4 exact6; do
		assert_eq 16384 "$(bpftool -j map show pinned "$PIN_ROOT/$id/$i" | jq .max_entries)" \
			"max_entries of $i (CGF_EXACT_MIN_ENTRIES)"
	done
	total=0
	for i in allow4 allow6 exact4 exact6 config stats events; do
		out=$(bpftool -j map show pinned "$PIN_ROOT/$id/$i" | jq .bytes_memlock)
		[ "${out:-0}" -gt 0 ] 2>/dev/null || { fail "no bytes_memlock for $i: '$out'"; return; }
		total=$((total + out))
	done
	echo "bytes_memlock of a 10-prefix fence's maps: $total" >&2
	[ "$total" -lt $((4 * 1024 * 1024)) ] || fail "a 10-prefix fence's maps hold $total bytes (aim: < 4 MiB)"
	OUT=$(in_cgroup "$dir" "$PROBE" tcp 198.18.0.9 80 --timeout-ms 1000)
	assert_eq "$DENIED" "$OUT" "the small fence is in force"
	out=$("$CGFENCE" detach --cgroup "$dir" 2>&1) || fail "detach: $out"
}

run_tests "$@"
