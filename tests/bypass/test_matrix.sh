#!/bin/bash
# The bypass matrix (issue #6): every way out of a fence we know of, tried from
# inside one, by two identities, each measured at a listener on a denied host.
#
# The fence allows one test host, 198.18.0.2 (`cgfence run --allow
# 198.18.0.2`, plus the boundary program on the host side of the fence's veth
# where cgfence has --boundary).  Every vector aims at 198.18.0.3 /
# 2001:db8::3, where a listener counts what arrives; then the same vector is
# sent unfenced from the same network namespace (the control), and the
# listener must count it: a listener that could not have seen the vector
# proves nothing.
#
# Identities (the threat model's two kinds of container root):
#   userns    root with every capability in a new user namespace that owns a
#             new network namespace (a rootless container): the fenced process
#             runs `unshare --user --map-root-user --net`, and the test moves
#             the client end of the test veth into that namespace, so the user
#             namespace owns a network namespace with a real link out.
#   netadmin  root in the initial user namespace with only CAP_NET_ADMIN and
#             CAP_NET_RAW (setpriv), in the client namespace $TAG-c.
#
# Each test is one vector, run as both identities; each prints its rows, and
# the suite ends with the table (vector, identity, result):
#   blocked: error ENAME [hooks]   the kernel refused the vector
#   nothing arrived: ok ... [hooks] the vector was sent, dropped on its way
#   allowed-by-design: reason      arrives, and the design says so
#   n/a: reason                    the kernel here lacks what the vector needs
#   ARRIVED ...                    a bypass (the test fails)
# [hooks] are the hooks named by the fence's deny events.
#
#   tests/bypass/test_matrix.sh [test_name...]

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PIN_ROOT=/sys/fs/bpf/cgfence
D4=198.18.0.3
D6=2001:db8::3
NETADMIN="setpriv --inh-caps=-all,+net_admin,+net_raw --ambient-caps=-all,+net_admin,+net_raw --bounding-set=-all,+net_admin,+net_raw --"
IDENTITIES="userns netadmin"
ROWS=$WORK/matrix.rows
: >"$ROWS"

# Every fence has the boundary program on the server end of its veth: the
# vectors below IP (AF_PACKET, TUN, tunnels, netdev rewrites) need it.  Its
# link is pinned beside the cgroup hooks'.
N_LINK_PINS=$((FENCE_HOOKS + 1)) # read by a CELL_CHECK
export N_LINK_PINS

suite_cleanup() {
	[ -f "$WORK/release" ] || touch "$WORK/release"
	local p
	for p in $(cat "$WORK/session.pids" 2>/dev/null); do
		kill -TERM "$p" 2>/dev/null
	done
	kill_listeners
	[ -f "$WORK/daemon.pid" ] && kill "$(cat "$WORK/daemon.pid")" 2>/dev/null
	[ -f "$WORK/helper.pid" ] && kill "$(cat "$WORK/helper.pid")" 2>/dev/null
	[ -f "$WORK/hook.pid" ] && kill "$(cat "$WORK/hook.pid")" 2>/dev/null
	for p in $(cat "$WORK/session.pids" 2>/dev/null); do
		wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null
	done
	net_down
	rm -rf "/sys/fs/bpf/$TAG-d"
	rm -f "$WORK"/{session.pids,daemon.pid,helper.pid,hook.pid,hook.in,go,attacked,release,inner.pid}
}

# ---- helpers ----------------------------------------------------------------

setup() {
	need "$CGFENCE" "$PROBE" "$TAMPER" -- setpriv unshare nsenter nft bpftool
}

# listener SPEC: starts listener "denied" in the server namespace (or in
# $LISTEN_NET).  SPEC is tcp ADDR PORT | udp ADDR PORT [--via IFADDR] |
# icmp ADDR | raw PROTO ADDR.
listener() {
	local kind=$1
	shift
	rm -f "$WORK/denied.count"
	case $kind in
	tcp) set -- listen-tcp "$@" ;;
	udp) set -- listen-udp "$@" ;;
	icmp) set -- listen-raw-icmp "$@" ;;
	raw) set -- listen-raw "$@" ;;
	*) echo "unknown listener kind $kind" >&2; return 1 ;;
	esac
	nsenter --net="${LISTEN_NET:-/run/netns/$NS_S}" -- "$PROBE" "$@" \
		--count-file "$WORK/denied.count" --max-seconds 120 >/dev/null 2>&1 &
	echo $! >>"$WORK/pids"
	wait_file "$WORK/denied.count" 5 || { echo "listener $* did not start" >&2; return 1; }
}

# wait_units N SECONDS: until listener "denied" counted N (bounded).
wait_units() {
	local _
	for _ in $(seq 1 $(($2 * 20))); do
		[ "$(units denied)" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# The network for one session: lib.sh's test network, a route back for the
# source addresses forwarding vectors use (198.18.4.0/22 behind the client),
# and the MAC of the server end, which frame-building vectors address.  The
# server end forwards, as a podman host's bridge does: cgfence attaches a
# boundary only where the kernel's forwarding lookup (its source check) works.
session_net() {
	net_up || return 1
	ip netns exec "$NS_S" sysctl -qw "net.ipv4.conf.${TAG}b.forwarding=1" \
		"net.ipv6.conf.${TAG}b.forwarding=1" || return 1
	ip -n "$NS_S" route add 198.18.4.0/22 via 198.18.0.1 dev "${TAG}b" || return 1
	SERVER_MAC=$(ip -n "$NS_S" -br link show "${TAG}b" | awk '{print $3}')
	[ -n "$SERVER_MAC" ]
}

# fence_net: the network namespace the fenced process sends from.
fence_net() {
	if [ "$IDENT" = userns ] && [ -z "${NOMOVE:-}" ]; then
		echo "/proc/$INNER_PID/ns/net"
	else
		echo "/run/netns/$NS_C"
	fi
}

# configure_userns_net: moves the client end of the veth into the fenced user
# namespace's network namespace and gives it the client's addresses there.
#
# Neighbour discovery is static both ways: the kernel's own sockets of a
# network namespace (ndisc, ICMP, TCP resets) belong to the cgroup of the
# process that made the namespace, here the fence, which denies them like any
# other traffic of the fence; IPv6 could not find a neighbour otherwise.
configure_userns_net() {
	local ns=/proc/$INNER_PID/ns/net mac
	ip -n "$NS_C" link set "${TAG}a" netns "$INNER_PID" || return 1
	nsenter --net="$ns" -- sh -ec "
		ip link set lo up
		ip addr add 198.18.0.1/24 dev ${TAG}a
		ip addr add 2001:db8::1/64 dev ${TAG}a nodad
		ip link set ${TAG}a up
		for i in 2 3 4 5 6 7 8 9; do
			ip neigh replace 2001:db8::\$i lladdr $SERVER_MAC dev ${TAG}a nud permanent
		done
		sysctl -qw net.ipv4.ping_group_range='0 2147483647'
		sysctl -qw net.ipv4.tcp_fastopen=5" || return 1
	mac=$(nsenter --net="$ns" -- ip -br link show "${TAG}a" | awk '{print $3}')
	ip -n "$NS_S" neigh replace 2001:db8::1 lladdr "$mac" dev "${TAG}b" nud permanent || return 1
	# Ready once a SYN to the allowed host gets its reset (from outside,
	# unfenced: the boundary lets only what the fence allows in; IPv6 has
	# static neighbours and no DAD, so it is ready with the link).
	for _ in $(seq 1 50); do
		[ "$(nsenter --net="$ns" -- "$PROBE" tcp 198.18.0.2 9 --timeout-ms 500 2>/dev/null)" = \
			"error ECONNREFUSED" ] && return 0
		sleep 0.1
	done
	echo "the moved link did not come up" >&2
	return 1
}

# start_session fenced|unfenced: $WORK/inner.sh as $IDENT, under `cgfence
# run` (allow 198.18.0.2 only, the boundary where there is one) or, for the
# control, without.  inner.sh waits for $WORK/go, sources $WORK/attack.sh
# (output in $WORK/attack.out), touches $WORK/attacked and waits for
# $WORK/release.  $PREFENCE, if set, is shell run first (in the client
# namespace): sockets it opens are inherited into the fence.
start_session() {
	local run=() prefix
	rm -f "$WORK"/{go,attacked,release,inner.pid,attack.out,fence.err}
	case $IDENT in
	userns) prefix=(unshare --user --map-root-user --net --) ;;
	netadmin)
		# shellcheck disable=SC2206 # NETADMIN is a command line, split on purpose
		prefix=($NETADMIN)
		;;
	esac
	FENCE_CG=
	if [ "$1" = fenced ]; then
		run=("$CGFENCE" run --allow 198.18.0.2)
		run+=(--boundary "${TAG}b" --boundary-netns "/run/netns/$NS_S")
		# cgfence run drops both unless told to keep them
		[ "$IDENT" = netadmin ] && run+=(--keep-cap net_admin --keep-cap net_raw)
		run+=(--)
	fi
	cat >"$WORK/inner.sh" <<-EOF
		echo \$\$ >$WORK/inner.pid
		for i in \$(seq 1 200); do [ -f $WORK/go ] && break; sleep 0.05; done
		[ -f $WORK/go ] || exit 3
		cd $WORK || exit 3
		. $WORK/attack.sh >$WORK/attack.out 2>&1 </dev/null
		touch $WORK/attacked
		for i in \$(seq 1 400); do [ -f $WORK/release ] && break; sleep 0.05; done
		exit 0
	EOF
	nsenter --net="/run/netns/$NS_C" -- bash -c "${PREFENCE:-:}; exec \"\$@\"" bash \
		"${run[@]}" "${prefix[@]}" bash "$WORK/inner.sh" \
		>"$WORK/fence.out" 2>"$WORK/fence.err" </dev/null &
	FPID=$!
	echo "$FPID" >>"$WORK/session.pids"
	if ! wait_file "$WORK/inner.pid" 10; then
		fail "the $1 session did not start: $(cat "$WORK/fence.err")"
		return 1
	fi
	INNER_PID=$(cat "$WORK/inner.pid")
	if [ "$1" = fenced ]; then
		FENCE_CG=$(ls -d "$CG2"/cgfence/run-"$FPID"-* 2>/dev/null | head -1)
		[ -n "$FENCE_CG" ] || { fail "no fence cgroup for cgfence run $FPID"; return 1; }
	fi
	if [ "$IDENT" = userns ] && [ -z "${NOMOVE:-}" ]; then
		configure_userns_net || { fail "userns network"; return 1; }
	fi
	return 0
}

# end_session: lets the session end (bounded) and checks it left no cgroup.
end_session() {
	touch "$WORK/release"
	if ! wait_gone "$FPID" 15; then
		fail "session $FPID did not end"
		kill -TERM "$FPID" 2>/dev/null
		wait_gone "$FPID" 5 || kill -KILL "$FPID" 2>/dev/null
	fi
	wait "$FPID" 2>/dev/null
	sed -i "/^$FPID\$/d" "$WORK/session.pids"
	[ -n "$FENCE_CG" ] && [ -d "$FENCE_CG" ] && fail "fence cgroup $FENCE_CG left behind"
	return 0
}

# hooks: the hooks named in the fence's deny events, "[connect4,egress]";
# not those of the link-local chatter (neighbour discovery, MLD) of a network
# namespace made inside the fence.
hooks() {
	local h
	h=$(grep -Ev 'denied [^ ]+ (ff02|fe80):' "$WORK/fence.err" 2>/dev/null |
		sed -n 's/.*denied [^ ]* [^ ]* (\([a-z0-9_-]*\)).*/\1/p' |
		sort -u | paste -sd, -)
	[ -n "$h" ] && echo " [$h]"
}

# row VECTOR RESULT: one row of the table, also printed with the test.
row() {
	printf '%s\t%s\t%s\n' "$1" "$IDENT" "$2" >>"$ROWS"
	printf '    row: %-34s %-9s %s\n' "$1" "$IDENT" "$2"
}

# The probe's result line in the attack's output (the last one).
attack_result() {
	grep -E '^(ok|error)' "$WORK/attack.out" 2>/dev/null | tail -1
}

# phase fenced|unfenced LISTENER SCRIPT: one session running SCRIPT as
# $IDENT, in a fresh test network with listener LISTENER (a `listener` SPEC,
# or -) on the denied host ("fence-net SPEC": in the session's own network
# namespace, started once that exists).  Sets GOT (what arrived) and RES (the last probe
# line of the script's output).  @MAC@ in SCRIPT stands for the server end's
# MAC, @FPID@ for the session's pid (cgfence run's, when fenced).  $PRE_GO,
# if set, runs before the script starts; $CELL_CHECK (fenced only) after it,
# while the fence still stands.  EXPECT_ARRIVAL=1 (cell: a design: cell with a
# listener): the fenced attack must arrive, so the fenced phase also waits
# (bounded) for it, before counting and while the fence still stands.
phase() {
	local script=$3
	GOT=0 RES=
	session_net || { fail "$VECTOR: test network"; return 1; }
	if [ "$2" != - ] && [ "${2%% *}" != fence-net ]; then
		# shellcheck disable=SC2086 # word splitting intended
		listener $2 || { fail "$VECTOR: listener"; net_down; return 1; }
	fi
	if ! start_session "$1"; then
		end_session
		kill_listeners
		net_down
		return 1
	fi
	if [ "${2%% *}" = fence-net ]; then
		# shellcheck disable=SC2086 # word splitting intended
		LISTEN_NET=$(fence_net) listener ${2#fence-net } || fail "$VECTOR: listener"
	fi
	script=${script//@MAC@/$SERVER_MAC}
	script=${script//@FPID@/$FPID}
	printf '%s\n' "$script" >"$WORK/attack.sh"
	[ -n "${PRE_GO:-}" ] && eval "$PRE_GO"
	touch "$WORK/go"
	wait_file "$WORK/attacked" 30 || fail "$VECTOR ($IDENT, $1): the script did not finish"
	if [ "$1" = fenced ]; then
		sleep 0.3 # anything sent has long arrived (on an idle machine)
		# an arrival the cell expects: polled for too (a loaded machine, the
		# sanitizer pass); a blocked cell only gets the pause, as no poll
		# proves that nothing comes
		[ "${EXPECT_ARRIVAL:-0}" = 1 ] && wait_units 1 3
	else
		wait_units 1 3
	fi
	GOT=$(units denied)
	RES=$(attack_result)
	echo "    --- $VECTOR ($IDENT, $1):"
	sed 's/^/      /' "$WORK/attack.out"
	[ "$1" = fenced ] && [ -n "${CELL_CHECK:-}" ] && eval "$CELL_CHECK"
	# The last count while the fence still stands: a straggler counts as much
	# as the rest, but what arrives once the session has ended (and with it
	# the boundary) was sent by an unfenced namespace; a VXLAN device left in
	# the client namespace sends IPv6 chatter of its own for seconds.
	GOT=$(units denied)
	end_session
	[ "$1" = unfenced ] && GOT=$(units denied)
	kill_listeners
	net_down
	rm -f "$WORK/ids" "$WORK/give.sock"
	return 0
}

# cell VECTOR LISTENER CONTROL ATTACK [EXPECT]: ATTACK (shell; its last probe
# line is the result) run as $IDENT, first unfenced as the control, where it
# must reach listener LISTENER on the denied host (so the listener can see
# it), then fenced.  CONTROL is "attack" (the control runs ATTACK), other
# shell to run as the control instead (where ATTACK would do harm unfenced),
# or - (none).  EXPECT:
#   blocked (default)  nothing may arrive from the fenced attack
#   design:REASON      the fenced attack arrives, as designed (allowed-by-design)
# ROW_NOTE, if a check sets it, goes before the probe line in the row.
cell() {
	VECTOR=$1
	local listen=$2 control=$3 attack=$4 expect=${5:-blocked}
	# for phase: whether the fenced attack must reach the listener
	local EXPECT_ARRIVAL=0
	case $expect in design:*) [ "$listen" = - ] || EXPECT_ARRIVAL=1 ;; esac
	ROW_NOTE=
	if [ "$control" != - ]; then
		[ "$control" = attack ] && control=$attack
		phase unfenced "$listen" "$control" || return 1
		[ "$GOT" -ge 1 ] ||
			fail "$VECTOR ($IDENT): the control did not arrive unfenced ($RES), so the fenced run proves nothing"
	fi
	phase fenced "$listen" "$attack" || return 1
	case $expect in
	blocked)
		if [ "$listen" != - ] && [ "$GOT" != 0 ]; then
			row "$VECTOR" "ARRIVED ($GOT): $RES$(hooks)"
			fail "$VECTOR ($IDENT): $GOT reached the denied host ($RES)"
		elif [ -z "$RES" ]; then
			row "$VECTOR" "NO RESULT"
			fail "$VECTOR ($IDENT): no probe result"
		elif [ "${RES%% *}" = error ]; then
			row "$VECTOR" "blocked: $ROW_NOTE$RES$(hooks)"
		else
			row "$VECTOR" "nothing arrived: $ROW_NOTE$RES$(hooks)"
		fi
		;;
	design:*)
		# without a listener, the script's own result says what arrived
		if [ "$listen" = - ]; then
			row "$VECTOR" "allowed-by-design: ${expect#design:} ($RES)"
		else
			row "$VECTOR" "allowed-by-design: ${expect#design:} ($RES, arrived $GOT)"
			assert_eq 1 "$GOT" "$VECTOR ($IDENT): arrivals, by design"
		fi
		assert_match '^ok' "$RES" "$VECTOR ($IDENT): the send itself"
		;;
	esac
	return 0
}

# each_identity VECTOR LISTENER CONTROL ATTACK [EXPECT]: the cell for both identities.
each_identity() {
	setup || return
	for IDENT in $IDENTITIES; do
		cell "$@"
	done
}

# ---- vectors through the socket hooks ----------------------------------------

test_tcp_connect() {
	each_identity "TCP connect" "tcp $D4 80" "attack" "$PROBE tcp $D4 80 --timeout-ms 1000"
}

# MPTCP: the kernel makes the TCP subflows, in the socket's cgroup.
test_mptcp_connect() {
	each_identity "MPTCP connect" "tcp $D4 80" attack "$PROBE mptcp $D4 80 --timeout-ms 1000"
}

test_tcp_fastopen() {
	each_identity "TCP Fast Open" "tcp $D4 80" "attack" \
		"$PROBE tcp-fastopen $D4 80 --send x --timeout-ms 1000"
}

test_udp_connected() {
	each_identity "UDP connected" "udp $D4 5000" "attack" \
		"$PROBE udp-connect $D4 5000 --send x --timeout-ms 1000"
}

test_udp_sendto() {
	each_identity "UDP sendto" "udp $D4 5000" "attack" \
		"$PROBE udp-sendto $D4 5000 --send x --timeout-ms 1000"
}

test_udp_sendmsg() {
	each_identity "UDP sendmsg" "udp $D4 5000" "attack" \
		"$PROBE udp-sendmsg $D4 5000 --send x --timeout-ms 1000"
}

# An allowed message first, the denied one second: the batch stops there.
test_udp_sendmmsg() {
	each_identity "UDP sendmmsg (allowed, denied)" "udp $D4 5000" "attack" \
		"$PROBE udp-sendmmsg 198.18.0.2 5000 $D4 5000 --send x --timeout-ms 1000"
}

test_ipv6_tcp() {
	each_identity "IPv6 TCP" "tcp $D6 80" "attack" "$PROBE tcp $D6 80 --timeout-ms 1000"
}

test_ipv6_udp() {
	each_identity "IPv6 UDP sendto" "udp $D6 5000" "attack" \
		"$PROBE udp-sendto $D6 5000 --send x --timeout-ms 1000"
}

test_mapped_tcp() {
	each_identity "IPv4-mapped IPv6 TCP" "tcp $D4 80" "attack" \
		"$PROBE tcp ::ffff:$D4 80 --timeout-ms 1000"
}

test_mapped_udp() {
	each_identity "IPv4-mapped IPv6 UDP" "udp $D4 5000" "attack" \
		"$PROBE udp-sendto ::ffff:$D4 5000 --send x --timeout-ms 1000"
}

test_udp6_af4_sockaddr() {
	each_identity "AF_INET sockaddr on AF_INET6 UDP" "udp $D4 5000" "attack" \
		"$PROBE udp6-af4 $D4 5000 --send x --timeout-ms 1000"
}

test_io_uring_connect() {
	each_identity "io_uring connect" "tcp $D4 80" "attack" \
		"$PROBE uring-connect $D4 80 --timeout-ms 1000"
}

test_io_uring_sendmsg() {
	each_identity "io_uring sendmsg" "udp $D4 5000" "attack" \
		"$PROBE uring-sendmsg $D4 5000 --send x --timeout-ms 1000"
}

test_multicast() {
	each_identity "UDP multicast 224.0.0.251" "udp 224.0.0.251 5353 --via 198.18.0.2" \
		"attack" \
		"$PROBE udp-multicast 224.0.0.251 5353 --send x --via 198.18.0.1 --timeout-ms 1000"
}

test_broadcast() {
	each_identity "UDP broadcast 198.18.0.255" "udp 198.18.0.255 5000" \
		"attack" \
		"$PROBE udp-broadcast 198.18.0.255 5000 --send x --timeout-ms 1000"
}

# ---- raw and ping sockets: only egress sees them -------------------------------

test_raw_ipproto_raw() {
	each_identity "raw IPv4 IPPROTO_RAW (own header)" "udp $D4 5000" \
		"attack" \
		"$PROBE raw-udp 198.18.0.1 $D4 5000 --send x --timeout-ms 1000"
}

# The header names the denied host, the sockaddr (routing) the allowed one.
test_raw_ipproto_raw_via_allowed() {
	each_identity "raw IPv4 header≠sockaddr (via allowed)" "udp $D4 5000" \
		"attack" \
		"$PROBE raw-udp 198.18.0.1 $D4 5000 --send x --via 198.18.0.2 --timeout-ms 1000"
}

test_raw6_ipproto_raw() {
	each_identity "raw IPv6 IPPROTO_RAW (own header)" "udp $D6 5000" attack \
		"$PROBE raw6-hdrincl 2001:db8::1 $D6 5000 --send x --timeout-ms 1000"
}

test_raw_icmp() {
	each_identity "raw ICMP echo" "icmp $D4" "attack" "$PROBE raw-icmp $D4 --timeout-ms 1000"
}

test_raw_icmp6() {
	each_identity "raw ICMPv6 echo" "icmp $D6" "attack" "$PROBE raw-icmp $D6 --timeout-ms 1000"
}

test_raw6_udp() {
	each_identity "raw IPv6 (UDP header)" "udp $D6 5000" "attack" \
		"$PROBE raw6-udp $D6 5000 --send x --timeout-ms 1000"
}

test_ping_socket() {
	each_identity "ping socket ICMP" "icmp $D4" "attack" "$PROBE ping $D4 --timeout-ms 1000"
}

test_ping6_socket() {
	each_identity "ping socket ICMPv6" "icmp $D6" "attack" "$PROBE ping $D6 --timeout-ms 1000"
}

# SCTP has no socket hooks; egress sees its packets.  Where the kernel has no
# SCTP (nor a module for it), the row says so.
test_sctp() {
	setup || return
	command -v modprobe >/dev/null && modprobe sctp 2>/dev/null
	local r
	r=$("$PROBE" sctp 127.0.0.1 9 --timeout-ms 500)
	if [ "$r" = "error EPROTONOSUPPORT" ] || [ "$r" = "error ESOCKTNOSUPPORT" ]; then
		for IDENT in $IDENTITIES; do
			row "SCTP" "n/a: this kernel has no SCTP (socket(): ${r#error }; CONFIG_IP_SCTP unset, no module)"
		done
		return 0
	fi
	for IDENT in $IDENTITIES; do
		cell "SCTP" "raw 132 $D4" "attack" \
			"$PROBE sctp $D4 5000 --send x --timeout-ms 1000"
	done
}

# ---- below the socket hooks: the boundary program's rows -------------------------

test_af_packet_raw() {
	setup || return
	for IDENT in $IDENTITIES; do
		cell "AF_PACKET SOCK_RAW frame" "udp $D4 5000" \
			"attack" \
			"$PROBE packet ${TAG}a @MAC@ 198.18.0.1 $D4 5000 --send x --timeout-ms 1000"
	done
}

test_af_packet_dgram() {
	setup || return
	for IDENT in $IDENTITIES; do
		cell "AF_PACKET SOCK_DGRAM frame" "udp $D4 5000" \
			"attack" \
			"$PROBE packet-dgram ${TAG}a @MAC@ 198.18.0.1 $D4 5000 --send x --timeout-ms 1000"
	done
}

# OUTPUT DNAT from the allowed host to the denied one: the socket hooks see
# the address before NAT, egress the one after.
test_output_dnat() {
	each_identity "nft OUTPUT DNAT allowed→denied" "udp $D4 5000" attack "
		nft -f - <<-NFT
		table ip $TAG {
			chain out {
				type nat hook output priority -100;
				ip daddr 198.18.0.2 udp dport 5000 dnat to $D4
			}
		}
		NFT
		$PROBE udp-sendto 198.18.0.2 5000 --send x --timeout-ms 1000"
}

# A TUN device and forwarding: the packet written into it is routed out with
# no socket at all.
test_tun_forwarding() {
	each_identity "TUN + forwarding" "udp $D4 5000" \
		"attack" "
		ip tuntap add dev ${TAG}t mode tun && ip link set ${TAG}t up &&
		ip addr add 198.18.5.1/24 dev ${TAG}t &&
		sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.ipv4.conf.all.rp_filter=0 &&
		sysctl -qw net.ipv4.conf.${TAG}t.rp_filter=0
		$PROBE tun-send ${TAG}t 198.18.5.2 $D4 5000 --send x --timeout-ms 1000"
}

# VXLAN to the denied host carrying a datagram for the allowed one: the cgroup
# hooks judge the inner packet (allowed); the outer one leaves from a kernel
# socket.
test_vxlan() {
	each_identity "VXLAN (outer to denied host)" "udp $D4 4789" \
		"attack" "
		ip link add ${TAG}x type vxlan id 42 remote $D4 dstport 4789 dev ${TAG}a &&
		ip addr add 198.18.6.1/24 dev ${TAG}x && ip link set ${TAG}x up &&
		ip route add 198.18.0.2/32 dev ${TAG}x &&
		ip neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev ${TAG}x nud permanent
		$PROBE udp-sendto 198.18.0.2 5000 --send x --timeout-ms 1000"
}

# nft netdev egress rewrites the destination after every cgroup hook.
test_nft_netdev_egress() {
	each_identity "nft netdev egress rewrite" "udp $D4 5000" \
		"attack" "
		nft -f - <<-NFT
		table netdev $TAG {
			chain out {
				type filter hook egress device \"${TAG}a\" priority 0;
				ip daddr 198.18.0.2 udp dport 5000 ip daddr set $D4
			}
		}
		NFT
		$PROBE udp-sendto 198.18.0.2 5000 --send x --timeout-ms 1000"
}

# Loopback of the fence's own network namespace (a listener there, outside
# the fence): judged like any address.
test_loopback() {
	each_identity "loopback of the fence's netns" "fence-net tcp 127.0.0.1 80" attack \
		"$PROBE tcp 127.0.0.1 80 --timeout-ms 1000"
}

# A network namespace made inside the fence, routed out through the fence's
# own: its sockets are still the fence's (they are created in its cgroup).
# Only the user namespace's root can make one.
test_new_netns() {
	setup || return
	IDENT=userns CELL_CHECK='ROW_NOTE="from the new netns: tcp $(sed -n 2p "$WORK/nested.out"), udp "' \
		cell "new netns inside (veth, forwarded)" "udp $D4 5000" attack "
		rm -f $WORK/nested.*
		ip link add ${TAG}n type veth peer name ${TAG}m &&
		ip addr add 198.18.4.1/24 dev ${TAG}n && ip link set ${TAG}n up &&
		sysctl -qw net.ipv4.ip_forward=1 || echo setup-failed
		unshare --net sh -c 'echo \$\$ >$WORK/nested.pid
			for i in \$(seq 1 100); do [ -f $WORK/nested.go ] && break; sleep 0.05; done
			$PROBE udp-sendto $D4 5000 --send x --timeout-ms 1000 >$WORK/nested.out
			$PROBE tcp $D4 80 --timeout-ms 1000 >>$WORK/nested.out' &
		for i in \$(seq 1 100); do [ -s $WORK/nested.pid ] && break; sleep 0.05; done
		npid=\$(cat $WORK/nested.pid)
		ip link set ${TAG}m netns \$npid
		nsenter --net=/proc/\$npid/ns/net sh -c 'ip link set lo up &&
			ip addr add 198.18.4.2/24 dev ${TAG}m && ip link set ${TAG}m up &&
			ip route add default via 198.18.4.1' || echo nested-setup-failed
		touch $WORK/nested.go
		wait
		cat $WORK/nested.out
		head -1 $WORK/nested.out"
	IDENT=netadmin CELL_CHECK='ROW_NOTE="unshare(CLONE_NEWNET): "' \
		cell "new netns inside (veth, forwarded)" "udp $D4 5000" - \
		"out=\$(unshare --net true 2>&1) && echo ok unshared ||
		case \$out in *'not permitted'*) echo error EPERM ;; *) echo \"error \$out\" ;; esac"
	rm -f "$WORK"/nested.*
}

# ---- sockets from outside the fence --------------------------------------------------

# give_from_outside: a trusted process in a namespace of its own ($TAG-o,
# 198.18.1.1, routed to the servers through a link of its own) makes a UDP
# socket and hands it to whoever connects to $WORK/give.sock.
give_from_outside() {
	ip netns add "$TAG-o" &&
		ip link add "${TAG}o" netns "$TAG-o" type veth peer name "${TAG}p" netns "$NS_S" &&
		ip -n "$TAG-o" addr add 198.18.1.1/24 dev "${TAG}o" &&
		ip -n "$NS_S" addr add 198.18.1.2/24 dev "${TAG}p" &&
		ip -n "$TAG-o" link set "${TAG}o" up && ip -n "$NS_S" link set "${TAG}p" up &&
		ip -n "$TAG-o" route add 198.18.0.0/24 via 198.18.1.2 || fail "outside namespace"
	give_in "/run/netns/$TAG-o"
}

# give_from_fence_netns: the same, from a process outside the fence's cgroup
# but in its network namespace.
give_from_fence_netns() {
	give_in "$(fence_net)"
}

give_in() {
	nsenter --net="$1" -- "$PROBE" fd-give "$WORK/give.sock" 4 --timeout-ms 20000 \
		>"$WORK/give.out" 2>&1 &
	echo $! >>"$WORK/pids"
	wait_file "$WORK/give.sock" 5 || fail "fd-give did not start: $(cat "$WORK/give.out")"
}

# A socket keeps the cgroup it was made in: the send on it succeeds, and no
# hook of the fence's cgroup says a word about it.
NOT_JUDGED='assert_match "^ok" "$RES" "a socket made outside the fence is not judged by its cgroup hooks"
	assert_no_match "denied [^ ]+ 198\.18\.0\.3[: ].*\((connect|sendmsg|egress)[46]?[:)]" \
		"$(cat "$WORK/fence.err")" "deny events of the cgroup hooks for the denied host"
	ROW_NOTE="no cgroup hook judges it, the send succeeds: "'

# A socket made by a trusted process outside the fence and outside the fence's
# network namespace, handed in over a unix socket: nothing of the fence judges
# it (its cgroup is its creator's, and it leaves through another link).
test_scm_rights_outside() {
	setup || return
	for IDENT in $IDENTITIES; do
		PRE_GO=give_from_outside cell "SCM_RIGHTS socket from outside" "udp $D4 5000" - \
			"$PROBE fd-take $WORK/give.sock $D4 5000 --send x --timeout-ms 2000" \
			"design:the sender outside the fence is trusted; a socket is judged by the cgroup it was made in"
	done
}

# The same, but the trusted sender makes the socket in the fence's own network
# namespace: the cgroup hooks do not judge it, the boundary does.
test_scm_rights_fence_netns() {
	setup || return
	for IDENT in $IDENTITIES; do
		PRE_GO=give_from_fence_netns CELL_CHECK=$NOT_JUDGED \
			cell "SCM_RIGHTS socket of the fence's netns" "udp $D4 5000" attack \
			"$PROBE fd-take $WORK/give.sock $D4 5000 --send x --timeout-ms 2000"
	done
}

# A socket the process made before it entered the fence (inherited through
# `cgfence run`): it keeps the cgroup it was made in, so the socket hooks do
# not judge it; it leaves through the fence's link, where the boundary does.
test_socket_before_fence() {
	setup || return
	for IDENT in $IDENTITIES; do
		NOMOVE=1 PREFENCE="exec 7<>/dev/udp/$D4/5001" CELL_CHECK=$NOT_JUDGED \
			cell "socket made before entering" \
			"udp $D4 5000" attack \
			"$PROBE fd-send 7 $D4 5000 --send x --timeout-ms 1000"
	done
}

# inbound_client: from the denied host (198.18.0.3 as source), once the fenced
# server listens, connect to it and send; its reply is what the server inside
# the fence sent to the denied host.  Connection tracking is on in the server
# namespace, as on a host that publishes a container's ports: the boundary
# knows replies by it.
inbound_client() {
	ip -n "$NS_S" route replace 198.18.0.1/32 dev "${TAG}b" src "$D4" || fail "source route"
	nsenter --net="/run/netns/$NS_S" -- nft -f - <<-EOF || fail "conntrack in $NS_S"
		table inet $TAG {
			chain out { type filter hook output priority 0; ct state new counter; }
		}
	EOF
	(
		wait_file "$WORK/inbound.ready" 10 &&
			nsenter --net="/run/netns/$NS_S" -- "$PROBE" tcp 198.18.0.1 8080 --send hello \
				--expect-reply --timeout-ms 3000 >"$WORK/inbound.tmp" 2>&1
		mv "$WORK/inbound.tmp" "$WORK/inbound.out"
	) &
	echo $! >>"$WORK/pids"
}

# A server inside the fence, a connection from the denied host: the replies
# pass (README: servers inside the fence keep working), an exfiltration
# channel only for a peer that can reach the fenced server.
test_inbound_connection_replies() {
	setup || return
	for IDENT in $IDENTITIES; do
		PRE_GO='rm -f "$WORK"/inbound.*; inbound_client' \
			cell "inbound from denied host, replies" - - "
		$PROBE listen-tcp 198.18.0.1 8080 --count-file $WORK/inbound.count --max-seconds 8 --echo >/dev/null &
		for i in \$(seq 1 100); do [ -f $WORK/inbound.count ] && break; sleep 0.05; done
		touch $WORK/inbound.ready
		for i in \$(seq 1 160); do [ -f $WORK/inbound.out ] && break; sleep 0.05; done
		kill %1
		cat $WORK/inbound.out" \
			"design:a connection accepted from outside gets its replies (conntrack on the host side), the peer reached in"
	done
	rm -f "$WORK"/inbound.*
}

# ---- leaving the fence, undoing it ------------------------------------------------------

# Every cgroup.procs in reach, the host's tree through /proc/PID/root of a
# host process with the same credentials (writes and clone3 into it),
# cgroup namespaces; afterwards the process must still be fenced.
test_cgroup_escape() {
	setup || return
	$NETADMIN sleep 120 &
	echo $! >"$WORK/helper.pid"
	local h=$!
	for IDENT in $IDENTITIES; do
		CELL_CHECK='assert_no_match "moved via|MOVED|ok cloned" "$(cat "$WORK/attack.out")" "no move out of the fence"
			assert_match "clone-into .*: error" "$(cat "$WORK/attack.out")" "clone3 into a host cgroup tried"
			assert_match "cgroup-now=0::/sub" "$(cat "$WORK/attack.out")" "still in the fence"
			ROW_NOTE="$(grep -c "^refused via" "$WORK/attack.out") cgroup.procs writes, 2 clone3(CLONE_INTO_CGROUP) and setns refused, still fenced; then "' \
		cell "leave the cgroup (procs, cgroupns)" "tcp $D4 80" "$PROBE tcp $D4 80 --timeout-ms 1000" "
		for f in /proc/$h/root$CG2/cgroup.procs /proc/1/root$CG2/cgroup.procs \\
			/proc/$h/root$CG2/cgfence/cgroup.procs; do
			if echo \$BASHPID 2>/dev/null >\$f; then echo moved via \$f; else echo refused via \$f; fi
		done
		for d in /proc/$h/root$CG2 /proc/$h/root$CG2/cgfence; do
			echo clone-into \$d: \$($PROBE clone-into \$d 2>&1)
		done
		nsenter --cgroup=/proc/$h/ns/cgroup true 2>/dev/null && echo MOVED by setns || echo setns-refused
		unshare --cgroup sh -c 'echo \$\$ >$CG2/cgroup.procs' 2>/dev/null && echo cgroupns-made || echo cgroupns-refused
		mkdir $CG2/sub && echo \$BASHPID >$CG2/sub/cgroup.procs
		echo cgroup-now=\$(grep ^0:: /proc/self/cgroup)
		$PROBE tcp $D4 80 --timeout-ms 1000"
	done
	kill "$h" 2>/dev/null
}

# bpf() against the fence's links, programs, maps and pins (tests/tools/tamper.c),
# then the fence must stand: FENCE_HOOKS attachments and the denied host still denied.
test_bpf_tamper() {
	setup || return
	for IDENT in $IDENTITIES; do
		CELL_CHECK='assert_eq "$FENCE_HOOKS" "$(attachments "$FENCE_CG")" "attachments after tampering"
			assert_eq "$FENCE_HOOKS" "$(cgroup_links "$FENCE_CG")" "attachments that are bpf links"
			assert_eq "$N_LINK_PINS" "$(ls "$PIN_ROOT/$(stat -c %i "$FENCE_CG")"/link_* | wc -l)" "pinned links after tampering"
			assert_match "tamper=0" "$(cat "$WORK/attack.out")" "no bpf() attempt breached the fence"
			ROW_NOTE="$(grep -o "[0-9]* attempts, [0-9]* breaches" "$WORK/attack.out"), all $N_LINK_PINS pinned links stand; then "' \
		PRE_GO='[ -z "$FENCE_CG" ] || { fence_ids "$FENCE_CG" >"$WORK/ids.tmp"; mv "$WORK/ids.tmp" "$WORK/ids"; }' \
		cell "bpf() detach/replace/update/get-fd" "tcp $D4 80" "$PROBE tcp $D4 80 --timeout-ms 1000" "
		for i in \$(seq 1 100); do [ -f $WORK/ids ] && break; sleep 0.05; done
		$TAMPER --cgroup $CG2 --scan-bpffs \$(cat $WORK/ids) | grep -v 'refused'
		echo tamper=\${PIPESTATUS[0]}
		$PROBE tcp $D4 80 --timeout-ms 1000"
	done
}

# Unmount or shadow bpffs: none is mounted in the fence; mounting one needs
# CAP_SYS_ADMIN in the initial user namespace; a tmpfs over /sys/fs/bpf in the
# user namespace's own mount namespace changes only its own view.
test_bpffs_unmount_shadow() {
	setup || return
	for IDENT in $IDENTITIES; do
		CELL_CHECK='assert_no_match "MOUNTED-BPFFS|PINS-VISIBLE" "$(cat "$WORK/attack.out")" "bpffs out of reach"
			assert_eq "$FENCE_HOOKS" "$(attachments "$FENCE_CG")" "attachments after the mount attempts"
			[ -n "$(ls "$PIN_ROOT/$(stat -c %i "$FENCE_CG")" 2>/dev/null)" ] || fail "the pins are gone"
			ROW_NOTE="bpffs mount refused, pins out of view, the links stand; then "' \
		cell "unmount/shadow bpffs" "tcp $D4 80" "$PROBE tcp $D4 80 --timeout-ms 1000" "
		umount /sys/fs/bpf 2>/dev/null && echo UNMOUNTED || echo umount-refused
		mount -t bpf bpf /sys/fs/bpf 2>/dev/null && echo MOUNTED-BPFFS || echo bpffs-mount-refused
		ls $PIN_ROOT 2>/dev/null && echo PINS-VISIBLE || echo pins-invisible
		unshare --mount sh -c 'mount -t bpf bpf /sys/fs/bpf 2>/dev/null && echo MOUNTED-BPFFS in own mount ns || echo own-ns-bpffs-refused
			mount -t tmpfs none /sys/fs/bpf 2>/dev/null && echo shadowed own view || echo shadow-refused' 2>&1
		$PROBE tcp $D4 80 --timeout-ms 1000"
	done
}

# ptrace and its relatives against cgfence's own processes: the `cgfence run`
# that made the fence, a cgfenced and a cgfence-hook (kept running by a stdin
# that has not ended).  The control (host root) shows that the probe does
# reach a process when it may.
test_ptrace_cgfence() {
	setup || return
	mkdir -p "$WORK/pol" "/sys/fs/bpf/$TAG-d"
	"$BUILD/cgfenced" --config /dev/null --foreground --policy-dir "$WORK/pol" \
		--socket "$WORK/cgfenced.sock" --bpffs "/sys/fs/bpf/$TAG-d" --resolver 198.18.0.5 \
		>"$WORK/daemon.log" 2>&1 </dev/null &
	echo $! >"$WORK/daemon.pid"
	local d=$! hk r
	# polled: 30 s only for a loaded machine in the sanitizer pass
	wait_file "$WORK/cgfenced.sock" 30 || { fail "cgfenced did not start: $(cat "$WORK/daemon.log")"; return; }
	mkfifo "$WORK/hook.in"
	"$BUILD/cgfence-hook" create --socket "$WORK/cgfenced.sock" <"$WORK/hook.in" \
		>"$WORK/hook.log" 2>&1 &
	hk=$!
	echo "$hk" >"$WORK/hook.pid"
	exec 8>"$WORK/hook.in" # the hook waits for the rest of its state
	for IDENT in $IDENTITIES; do
		CELL_CHECK='assert_eq 3 "$(grep -cE "^error" "$WORK/attack.out")" "ways into cgfence run, cgfence-hook and cgfenced refused"
			assert_no_match "^ok" "$(cat "$WORK/attack.out")" "a way into a cgfence process"
			alive "$hk" || fail "cgfence-hook ended before the attack"
			ROW_NOTE="cgfence run, cgfence-hook and cgfenced each: "' \
		cell "ptrace/vm_writev/pidfd_getfd cgfence" - - "
		$PROBE ptrace @FPID@
		$PROBE ptrace $hk
		$PROBE ptrace $d"
	done
	r=$("$PROBE" ptrace "$d" 2>/dev/null)
	assert_match "^ok .*ptrace-seize" "$r" "control: host root reaches cgfenced"
	r=$("$PROBE" ptrace "$hk" 2>/dev/null)
	assert_match "^ok .*ptrace-seize" "$r" "control: host root reaches cgfence-hook"
	exec 8>&-
	kill "$d" "$hk" 2>/dev/null
}

# ---- run, then the table -------------------------------------------------------

print_table() {
	local n_rows
	n_rows=$(wc -l <"$ROWS")
	echo
	echo "== bypass matrix (fence allows 198.18.0.2 only; boundary program on the server end of the veth)"
	printf '%-40s %-9s %s\n' VECTOR IDENTITY RESULT
	sort -s -t $'\t' -k1,1 "$ROWS" | awk -F'\t' '{ printf "%-40s %-9s %s\n", $1, $2, $3 }'
	printf '%d rows: %d blocked, %d nothing arrived, %d allowed-by-design, %d n/a, %d ARRIVED\n' \
		"$n_rows" "$(grep -c $'\tblocked' "$ROWS")" "$(grep -c $'\tnothing arrived' "$ROWS")" \
		"$(grep -c $'\tallowed-by-design' "$ROWS")" "$(grep -c $'\tn/a' "$ROWS")" \
		"$(grep -c $'\tARRIVED' "$ROWS")"
}

run_tests "$@"
rc=$?
print_table
exit $rc
