# Shared by the shell test suites: a tiny runner, assertions, and the test
# network (network namespaces with test hosts in 198.18.0.0/15 and
# 2001:db8::/32).  Source it, define functions named test_*, call run_tests.
#
# Each suite prints one line per test (PASS/FAIL/SKIP name: detail) and ends
# with "N passed, N failed, N skipped".  A test that needs something missing
# (root, BPF, a tool) calls skip "reason": outside CI that is a skip; with
# CI=true it is a failure, because CI must run every test.

set -u

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# CGFENCE_BUILD: the binaries under test (tests/run-all.sh: build/san for the
# sanitizer pass).
BUILD=${CGFENCE_BUILD:-$TOP/build}
CGFENCE=$BUILD/cgfence
CGFENCED=$BUILD/cgfenced
PROBE=$BUILD/tests/probe
TAMPER=$BUILD/tests/tamper
# shellcheck disable=SC2034 # the suites use it
ONPTY=$TOP/tests/tools/onpty.py
# SANITIZED: 1 when the binaries under test are the sanitizer build (make san;
# tests/run-all.sh's second pass), which runs about 3 times slower: a time
# limit that measures the machine more than the code gets more room then.
# Read from the daemon binary itself, whatever directory it came from.
# shellcheck disable=SC2034 # the suites use it
SANITIZED=$(grep -qs __asan_init "$CGFENCED" && echo 1 || echo 0)
# Every name a suite creates carries this tag, so cleanup finds them all.
TAG=cgft$$
WORK=$(mktemp -d "/tmp/cgfence-test.XXXXXX")
# The cgroup2 mount, from /proc/self/mountinfo (never assumed; empty when none).
CG2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
	/proc/self/mountinfo)

_passed=0
_failed=0
_skipped=0
_current=
_outcome=

fail() {
	echo "    fail: $*" >&2
	_outcome=fail
}

skip() {
	if [ "${CI:-}" = true ]; then
		fail "cannot run in CI: $*"
	else
		echo "    skip: $*" >&2
		[ "$_outcome" = fail ] || _outcome=skip
	fi
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_match REGEX TEXT WHAT
assert_match() {
	printf '%s' "$2" | grep -Eq -- "$1" || fail "$3: '$2' does not match /$1/"
}

assert_no_match() {
	if printf '%s' "$2" | grep -Eq -- "$1"; then fail "$3: '$2' matches /$1/"; fi
}

need_root() {
	if [ "$(id -u)" != 0 ]; then
		skip "needs root"
		return 1
	fi
	return 0
}

# need [FILE...] [-- CMD...]: what a test needs before it starts: root, a
# cgroup2 mount ($CG2), every FILE executable (binaries `make` builds), every
# CMD installed (`make test-deps`).  Skips (and is false) at the first missing.
need() {
	local x
	need_root || return 1
	[ -n "$CG2" ] || { skip "no cgroup2 filesystem mounted"; return 1; }
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		[ -x "$1" ] || { skip "needs $1 (make)"; return 1; }
		shift
	done
	[ $# -gt 0 ] && shift
	for x in "$@"; do
		command -v "$x" >/dev/null || { skip "needs $x (make test-deps)"; return 1; }
	done
	return 0
}

# Runs every function named test_* (or those named on the command line) in
# order, each in a subshell so that a failing test cannot leave state in the
# runner; the suite's cleanup runs after each test and at exit.
run_tests() {
	local t tests
	if [ $# -gt 0 ]; then tests="$*"; else tests=$(declare -F | awk '$3 ~ /^test_/ {print $3}'); fi
	for t in $tests; do
		_current=$t
		if ! declare -F "$t" >/dev/null; then
			_failed=$((_failed + 1))
			echo "FAIL $t"
			echo "    fail: no such test"
			continue
		fi
		local out rc
		out=$(
			_outcome=pass
			"$t"
			echo "__outcome=$_outcome"
		) 2>&1
		rc=$?
		local outcome=${out##*__outcome=}
		out=${out%__outcome=*}
		if [ $rc -ne 0 ] && [ "$outcome" = pass ]; then outcome=fail; out="$out    fail: exited $rc"$'\n'; fi
		case $outcome in
		pass*) _passed=$((_passed + 1)); echo "PASS $t" ;;
		skip*) _skipped=$((_skipped + 1)); echo "SKIP $t"; printf '%s' "$out" ;;
		*) _failed=$((_failed + 1)); echo "FAIL $t"; printf '%s' "$out" ;;
		esac
		if declare -F suite_cleanup >/dev/null; then suite_cleanup >/dev/null 2>&1; fi
	done
	echo "$_passed passed, $_failed failed, $_skipped skipped"
	[ $_failed -eq 0 ]
}

# stop_pid PID: SIGTERM, and SIGKILL if PID still runs 5 s later.  A daemon
# that stops on its own runs its exit path: in the sanitizer pass
# (tests/run-all.sh) that is where LeakSanitizer looks for leaks.
stop_pid() {
	local i
	kill -CONT "$1" 2>/dev/null
	kill -TERM "$1" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
}

_lib_exit() {
	if declare -F suite_cleanup >/dev/null; then suite_cleanup >/dev/null 2>&1; fi
	rm -rf "$WORK"
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM

# ---- processes and files ------------------------------------------------------

# alive PID: PID exists and is not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

# wait_for SECONDS CMD...: true once CMD succeeds (polled every 0.1 s); after
# SECONDS, CMD's own status from one last try.
wait_for() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# spawn VAR CMD...: CMD in the background, output to $WORK/VAR.out; its pid in
# VAR and in $WORK/spawned.pids (kill_spawned).
spawn() {
	local var=$1
	shift
	"$@" >"$WORK/$var.out" 2>&1 </dev/null &
	eval "$var=$!"
	echo $! >>"$WORK/spawned.pids"
}

# kill_spawned: SIGKILL to every process spawn started (the list stays, for
# a suite that looks for what they left).
kill_spawned() {
	local pid
	[ -f "$WORK/spawned.pids" ] || return 0
	for pid in $(cat "$WORK/spawned.pids"); do
		kill -KILL "$pid" 2>/dev/null
	done
}

# kill_dnsmasq PIDFILE...: ends the dnsmasq whose pid each PIDFILE holds, if
# that pid is still a dnsmasq (not a recycled one; a stopped one is continued
# to take the signal), and removes PIDFILE.
kill_dnsmasq() {
	local f pid
	for f in "$@"; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dnsmasq ]; then
			kill -CONT "$pid" 2>/dev/null
			kill "$pid"
		fi
		rm -f "$f"
	done
}

# wait_gone PID SECONDS: true once PID has ended (polls every 20 ms).
wait_gone() {
	local i
	for i in $(seq 1 $(($2 * 50))); do
		alive "$1" || return 0
		sleep 0.02
	done
	return 1
}

# wait_file FILE SECONDS: true once FILE exists.
wait_file() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# remove_cgroup_tree DIR: kills what is in cgroup DIR and below, then removes
# it, deepest first (bounded: 5 s for its processes to go, 2 s for DIR).
remove_cgroup_tree() {
	local d=$1 i
	[ -d "$d" ] || return 0
	echo 1 >"$d/cgroup.kill" 2>/dev/null
	for i in $(seq 1 100); do
		grep -q '^populated 0' "$d/cgroup.events" 2>/dev/null && break
		sleep 0.05
	done
	find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	for i in $(seq 1 20); do
		rmdir "$d" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- the test network ------------------------------------------------------
#
# net_up creates two namespaces: "$TAG-c" (the client side, where fenced
# commands run: cgfence run inside `ip netns exec` would lose the cgroup2
# mount, so commands enter it with nsenter --net) and "$TAG-s" (the servers).
# Addresses: client 198.18.0.1 / 2001:db8::1, servers 198.18.0.2..9 and
# 2001:db8::2..9 on the server side of one veth pair.
NS_C=
NS_S=

net_up() {
	NS_C=$TAG-c
	NS_S=$TAG-s
	# "${INCG[@]}" CG CMD...: CMD in the client namespace and in cgroup CG (a
	# command line, not a function, so that other commands can run it)
	# shellcheck disable=SC2016,SC2034 # $$ and $1 are the inner shell's; suites use INCG
	INCG=(nsenter "--net=/run/netns/$NS_C" -- sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh)
	ip netns add "$NS_C" || return 1
	ip netns add "$NS_S" || return 1
	ip link add "${TAG}a" netns "$NS_C" type veth peer name "${TAG}b" netns "$NS_S" || return 1
	ip -n "$NS_C" link set lo up
	ip -n "$NS_S" link set lo up
	ip -n "$NS_C" addr add 198.18.0.1/24 dev "${TAG}a"
	ip -n "$NS_C" addr add 2001:db8::1/64 dev "${TAG}a" nodad
	local i
	for i in 2 3 4 5 6 7 8 9; do
		ip -n "$NS_S" addr add 198.18.0.$i/24 dev "${TAG}b"
		ip -n "$NS_S" addr add 2001:db8::$i/64 dev "${TAG}b" nodad
	done
	ip -n "$NS_C" link set "${TAG}a" up
	ip -n "$NS_S" link set "${TAG}b" up
	# ping sockets for root's group, TCP Fast Open as client without cookie
	ip netns exec "$NS_C" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
	ip netns exec "$NS_C" sysctl -qw net.ipv4.tcp_fastopen=5
	ip netns exec "$NS_S" sysctl -qw net.ipv4.tcp_fastopen=0x207
	# Wait (bounded) until both ends have their real qdisc: until linkwatch
	# gets to it (up to 1 s) a veth drops what it is given, and a first
	# neighbour solicitation lost there costs a 1 s retransmit.
	for i in $(seq 1 100); do
		ip -n "$NS_C" link show "${TAG}a" | grep -q 'qdisc noop' ||
			ip -n "$NS_S" link show "${TAG}b" | grep -q 'qdisc noop' || break
		sleep 0.02
	done
	# then until the link answers, IPv4 and IPv6 (no ping(8) here: the
	# probe's ping socket, ping_group_range set above)
	for i in $(seq 1 50); do
		nsenter --net="/run/netns/$NS_C" -- "$PROBE" ping 198.18.0.2 --expect-reply \
			--timeout-ms 1000 >/dev/null 2>&1 &&
			nsenter --net="/run/netns/$NS_C" -- "$PROBE" ping 2001:db8::2 --expect-reply \
				--timeout-ms 1000 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "test network did not come up" >&2
	return 1
}

net_down() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$TAG-"); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
}

# in_client CMD...: runs CMD in the client namespace, keeping the host's
# mounts (cgroup2, bpffs) visible.
in_client() {
	nsenter --net="/run/netns/$NS_C" -- "$@"
}

in_server() {
	nsenter --net="/run/netns/$NS_S" -- "$@"
}

# listen_tcp NS ADDR PORT NAME: starts a bounded listener in NS that counts
# what reaches it into $WORK/NAME.count; waits until it listens.
listen_tcp() { _listen "$1" listen-tcp "$2" "$3" "$4"; }
listen_udp() { _listen "$1" listen-udp "$2" "$3" "$4"; }

_listen() {
	local ns=$1 kind=$2 addr=$3 port=$4 name=$5 i
	rm -f "$WORK/$name.count"
	nsenter --net="/run/netns/$ns" -- "$PROBE" "$kind" "$addr" "$port" \
		--count-file "$WORK/$name.count" --max-seconds 300 --echo >/dev/null 2>&1 &
	echo $! >>"$WORK/pids"
	for i in $(seq 1 50); do
		[ -f "$WORK/$name.count" ] && return 0
		sleep 0.1
	done
	echo "listener $name did not start" >&2
	return 1
}

# count NAME FIELD: a field of a listener's count file (0 when absent).
count() {
	local v
	v=$(sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$WORK/$1.count" 2>/dev/null)
	echo "${v:-0}"
}

# count_looped: from now on, counts the packets with a loopback destination
# that reach the server namespace, in prerouting (ahead of the martian check,
# which would drop them unseen).  looped: how many so far.
count_looped() {
	nsenter --net="/run/netns/$NS_S" nft -f - <<-EOF
		table ip ${TAG}lo {
			counter looped { }
			chain pre { type filter hook prerouting priority -300; ip daddr 127.0.0.0/8 counter name looped; }
		}
	EOF
}
looped() {
	nsenter --net="/run/netns/$NS_S" nft -j list counter ip "${TAG}lo" looped |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

kill_listeners() {
	[ -f "$WORK/pids" ] && xargs -r kill 2>/dev/null <"$WORK/pids"
	rm -f "$WORK/pids"
}

# ---- the daemon ---------------------------------------------------------------

# policy NAME LINE...: writes $WORK/pol/NAME.policy, a line each, after
# POLICY_HEAD when a suite sets it; whole, through a file renamed over it, so
# that a daemon watching the directory never reads half of one.
policy() {
	local name=$1
	shift
	mkdir -p "$WORK/pol" || return 1
	{
		[ -z "${POLICY_HEAD:-}" ] || printf '%s\n' "$POLICY_HEAD"
		printf '%s\n' "$@"
	} >"$WORK/pol/$name.policy.tmp" && mv "$WORK/pol/$name.policy.tmp" "$WORK/pol/$name.policy"
}

# start_cgfenced SECONDS [ARGS...]: cgfenced ($CGFENCED; under DAEMON_WRAP, a
# command such as valgrind, when set) in the foreground, with no config file,
# the policies of $WORK/pol, socket $SOCK, pins under $PIN_ROOT, then ARGS;
# log appended to $WORK/daemon.log, pid in DPID and in $WORK/daemon.pids.
# Waits up to SECONDS until it answers a status request on $SOCK: the socket
# first, because without one cgfence status reads the pins itself and succeeds.
start_cgfenced() {
	local n=$(($1 * 10)) i
	shift
	${DAEMON_WRAP[@]+"${DAEMON_WRAP[@]}"} "$CGFENCED" --config /dev/null --foreground \
		--policy-dir "$WORK/pol" --socket "$SOCK" --bpffs "$PIN_ROOT" \
		"$@" >>"$WORK/daemon.log" 2>&1 </dev/null &
	DPID=$!
	echo "$DPID" >>"$WORK/daemon.pids"
	for i in $(seq 1 "$n"); do
		[ -S "$SOCK" ] && "$CGFENCE" status --socket "$SOCK" >/dev/null 2>&1 && return 0
		alive "$DPID" || break
		sleep 0.1
	done
	echo "cgfenced did not start: $(tail -5 "$WORK/daemon.log")" >&2
	return 1
}

# stop_daemon: stops the daemon start_cgfenced started last (stop_pid), and
# reaps it.
stop_daemon() {
	stop_pid "$DPID"
	wait "$DPID" 2>/dev/null
}

# stop_daemons [CMD...]: runs CMD PID (stop_pid by default) for every daemon
# start_cgfenced started that still runs: a pid still that daemon's, not a
# recycled one (its command line names $SOCK).
stop_daemons() {
	local pid
	[ -f "$WORK/daemon.pids" ] || return 0
	[ $# -gt 0 ] || set -- stop_pid
	for pid in $(cat "$WORK/daemon.pids"); do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--socket $SOCK " &&
			"$@" "$pid"
	done
	rm -f "$WORK/daemon.pids"
}

# ---- fences ------------------------------------------------------------------

# units NAME: what listener NAME counted (connections, datagrams, packets).
units() {
	local v
	v=$(sed -n 's/^[a-z]*=\([0-9]*\).*/\1/p' "$WORK/$1.count" 2>/dev/null)
	echo "${v:-0}"
}

# fence_ids CGROUP: the ids of the links, programs and maps fencing CGROUP
# (its cgroup links, and every link pinned for it, such as the boundary's tc
# link), and its pins, as options of the tamper tool.
fence_ids() {
	python3 - "$1" <<-'PY'
	import glob, json, os, subprocess, sys
	def bpftool(*args):
	    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True).stdout
	    return json.loads(out) if out.strip() else []
	cgid = os.stat(sys.argv[1]).st_ino
	pins = sorted(glob.glob("/sys/fs/bpf/cgfence/%d/*" % cgid))
	links = {l["id"]: l for l in bpftool("link", "show")}
	ids = {l for l, v in links.items() if v.get("cgroup_id") == cgid}
	ids |= {bpftool("link", "show", "pinned", p).get("id") for p in pins
	        if os.path.basename(p).startswith("link_")}
	ids.discard(None)
	progs = {p["id"] for p in bpftool("cgroup", "show", sys.argv[1])}
	progs |= {links[l]["prog_id"] for l in ids if "prog_id" in links.get(l, {})}
	maps = set()
	for p in bpftool("prog", "show"):
	    if p["id"] in progs:
	        maps |= set(p.get("map_ids", []))
	out = ["--link-id %d" % i for i in sorted(ids)] + ["--prog-id %d" % i for i in sorted(progs)]
	out += ["--map-id %d" % i for i in sorted(maps)] + ["--pin %s" % p for p in pins]
	print("\n".join(out))
	PY
}

# The cgroup hooks of a fence outside DNS proxy mode, each a bpf link:
# connect4/6, sendmsg4/6, egress.
export FENCE_HOOKS=5

# attachments CGROUP: how many programs are attached to CGROUP with multi
# semantics (a fence has FENCE_HOOKS, all bpf links).
attachments() {
	# bpftool prints nothing at all for a cgroup without programs
	bpftool -j cgroup show "$1" 2>/dev/null | python3 -c '
import json, sys
text = sys.stdin.read().strip()
progs = json.loads(text) if text else []
print(len([p for p in progs if p.get("attach_flags", "multi") == "multi"]))'
}

# cgroup_links CGROUP: how many bpf links are attached to CGROUP.  Equal to
# `attachments` when every attachment is a link (none is a legacy one, which
# any process holding a cgroup fd could detach).
cgroup_links() {
	bpftool -j link show | python3 -c '
import json, sys
print(sum(1 for l in json.load(sys.stdin) if l.get("cgroup_id") == int(sys.argv[1])))' \
		"$(stat -c %i "$1")"
}
