#!/bin/bash
# A process inside a `cgfence run` fence tries to detach, replace or change the
# fence, and to leave its cgroup; afterwards the policy must still hold.
# Identities, as in the threat model:
#   netadmin  root in the initial user namespace with only CAP_NET_ADMIN and
#             CAP_NET_RAW (a rootful container given those)
#   run-root  root as `cgfence run` leaves it (every capability but those it
#             drops: CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, ...)
#   userns    root with every capability in a new user namespace (rootless
#             container; `unshare -Ur` by root maps it to uid 0 outside)
# Every attempt is measured: the tamper tool reports each bpf() command's
# result, and a probe to a denied host must still get EPERM with nothing
# arriving there.
. "$(dirname "$0")/../lib.sh"

suite_cleanup() {
	kill_listeners
	[ -f "$WORK/run.pid" ] && kill "$(cat "$WORK/run.pid")" 2>/dev/null
	[ -f "$WORK/host-helper.pid" ] && kill "$(cat "$WORK/host-helper.pid")" 2>/dev/null
	rm -f "$WORK/run.pid" "$WORK/host-helper.pid" "$WORK/ids" "$WORK/go"
	net_down
}

CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
NETADMIN="setpriv --inh-caps=-all,+net_admin,+net_raw --ambient-caps=-all,+net_admin,+net_raw --bounding-set=-all,+net_admin,+net_raw --"

# fenced_session SCRIPT: runs SCRIPT fenced (allow 198.18.0.2:80 only) in the
# client namespace, in the background; the script can wait for $WORK/go,
# written once the test has read the fence's ids into $WORK/ids.  Sets RUN_CG
# to the fence's cgroup.
fenced_session() {
	rm -f "$WORK/go" "$WORK/ids" "$WORK/session.out"
	# --keep-cap: the netadmin identity (a rootful container given CAP_NET_ADMIN
	# and CAP_NET_RAW) needs them in the bounding set, which run empties of them
	(exec nsenter --net="/run/netns/$NS_C" -- "$CGFENCE" run --allow 198.18.0.2:80/tcp \
		--keep-cap net_admin --keep-cap net_raw -- \
		bash -c "$1" >"$WORK/session.out" 2>&1) &
	echo $! >"$WORK/run.pid"
	local i
	RUN_CG=
	for i in $(seq 1 200); do
		RUN_CG=$(ls -d "$CG2"/cgfence/run-"$(cat "$WORK/run.pid")"-* 2>/dev/null | head -1)
		[ -n "$RUN_CG" ] && [ -n "$(cat "$RUN_CG/cgroup.procs" 2>/dev/null)" ] && break
		sleep 0.1
	done
	[ -n "$RUN_CG" ] || { fail "fence cgroup did not appear"; return 1; }
}

# Outcome of the session, once it has finished (bounded).
wait_session() {
	local i
	for i in $(seq 1 300); do
		kill -0 "$(cat "$WORK/run.pid")" 2>/dev/null || break
		sleep 0.1
	done
	wait "$(cat "$WORK/run.pid")" 2>/dev/null
	SESSION_STATUS=$?
	rm -f "$WORK/run.pid"
}

tamper_as() {
	local who=$1
	need_root || return
	net_up || { fail "test network"; return; }
	listen_tcp "$NS_S" 198.18.0.3 80 denied || return
	listen_tcp "$NS_S" 198.18.0.2 80 allowed || return
	local prefix
	case $who in
	netadmin) prefix=$NETADMIN ;;
	run-root) prefix= ;;
	userns) prefix="unshare -Ur --" ;;
	esac
	fenced_session "
		for i in \$(seq 1 100); do [ -f $WORK/go ] && break; sleep 0.1; done
		$prefix $TAMPER --cgroup /sys/fs/cgroup/unified --scan-bpffs \$(cat $WORK/ids) >$WORK/tamper.out 2>&1
		echo tamper=\$? >>$WORK/tamper.out
		$prefix $PROBE tcp 198.18.0.3 80 --timeout-ms 1000
		$prefix $PROBE tcp 198.18.0.2 80 --timeout-ms 1000" || return
	# from the fence's own view its cgroup is / of its cgroup2 mount
	fence_ids "$RUN_CG" >"$WORK/ids.tmp"
	mv "$WORK/ids.tmp" "$WORK/ids"
	assert_eq "$FENCE_HOOKS" "$(attachments "$RUN_CG")" "attachments before"
	assert_match -- "--link-id [0-9]+ .*--link-id" "$(cat "$WORK/ids")" "link ids found"
	local before_cg=$RUN_CG
	touch "$WORK/go"
	wait_session
	echo "--- tamper ($who)"; cat "$WORK/tamper.out"
	assert_match "tamper=0" "$(cat "$WORK/tamper.out")" "no bpf() attempt breached the fence"
	assert_match "0 breaches" "$(cat "$WORK/tamper.out")" "tamper summary"
	# the attempts the fence must refuse were really made
	assert_match "GET_FD_BY_ID" "$(cat "$WORK/tamper.out")" "get-fd-by-id attempted"
	assert_match "DETACH" "$(cat "$WORK/tamper.out")" "detach attempted"
	assert_match "error EPERM" "$(cat "$WORK/session.out")" "denied host still denied afterwards"
	assert_match "^ok" "$(grep -E '^(ok|error)' "$WORK/session.out" | tail -1)" "allowed host still allowed"
	# the listener counts the allowed connection once it has accepted it,
	# maybe after the probe's "ok": polled for (bounded), then read exactly
	wait_for 3 eval '[ "$(count allowed connections)" -ge 1 ]'
	assert_eq 0 "$(count denied connections)" "connections that reached the denied host"
	assert_eq 1 "$(count allowed connections)" "connections that reached the allowed host"
	assert_eq 0 "$SESSION_STATUS" "session exit status"
	[ -d "$before_cg" ] && fail "fence cgroup left behind"
}

test_tamper_netadmin() { tamper_as netadmin; }
test_tamper_run_root() { tamper_as run-root; }
test_tamper_userns() { tamper_as userns; }

# Leaving the cgroup: every cgroup.procs the process can reach, including the
# host's tree through /proc/PID/root of a host process with the same
# credentials; then a connect to the denied host must still fail.
test_cgroup_escape() {
	need_root || return
	net_up || { fail "test network"; return; }
	listen_tcp "$NS_S" 198.18.0.3 80 denied || return
	# A host process outside any fence, root with the same capabilities as
	# the fenced one (CAP_NET_ADMIN, CAP_NET_RAW): the ptrace rules let a
	# process with those credentials into its /proc/PID/root, the host's
	# mount namespace, where the whole cgroup2 tree is writable by DAC.
	# cgfence run's Landlock domain refuses that ptrace access; for a
	# process without one, nsdelegate stops a move through it.
	$NETADMIN sleep 60 &
	echo $! >"$WORK/host-helper.pid"
	local helper
	helper=$(cat "$WORK/host-helper.pid")
	fenced_session "
		for i in \$(seq 1 100); do [ -f $WORK/go ] && break; sleep 0.1; done
		$NETADMIN bash -c '
		[ -w /proc/$helper/root$CG2/cgroup.procs ] && echo host-tree-reachable ||
			echo host-tree-unreachable
		for f in /sys/fs/cgroup/unified/cgroup.procs /proc/$helper/root$CG2/cgroup.procs \
		         /proc/1/root$CG2/cgroup.procs /proc/$helper/root$CG2/cgfence/cgroup.procs; do
			if echo \$\$ 2>/dev/null >\$f; then echo moved via \$f; else echo refused via \$f; fi
		done
		mkdir /sys/fs/cgroup/unified/sub && echo \$\$ >/sys/fs/cgroup/unified/sub/cgroup.procs
		echo cgroup-now=\$(grep ^0:: /proc/self/cgroup)
		mount -t bpf bpf /mnt 2>/dev/null && echo MOUNTED-BPFFS || echo bpffs-mount-refused
		unshare -Urm sh -c \"mount -t bpf bpf /mnt\" 2>/dev/null && echo MOUNTED-BPFFS-USERNS || echo userns-bpffs-refused
		ls /sys/fs/bpf/cgfence 2>/dev/null && echo PINS-VISIBLE || echo pins-invisible
		$PROBE tcp 198.18.0.3 80 --timeout-ms 1000'" || return
	local cg=$RUN_CG
	# nsdelegate on its own: a process with the fenced one's credentials
	# but in no Landlock domain joins the fence's cgroup and a cgroup
	# namespace rooted there (what a container runtime does for its
	# processes), then writes itself into the host's tree through the
	# helper's /proc/PID/root
	local bare
	bare=$(sh -c 'echo $$ >"$1/cgroup.procs" && exec unshare --cgroup '"$NETADMIN"' sh -c "
		[ -w /proc/$2/root$3/cgroup.procs ] && echo host-tree-reachable
		echo \$\$ 2>/dev/null >/proc/$2/root$3/cgroup.procs && echo MOVED || echo refused
		grep ^0:: /proc/self/cgroup"' sh "$RUN_CG" "$helper" "$CG2" 2>&1)
	echo "--- without Landlock: $bare"
	assert_eq "host-tree-reachable
refused
0::/" "$bare" "without Landlock: the host's tree in reach, the move refused (nsdelegate)"
	touch "$WORK/go"
	wait_session
	kill "$helper" 2>/dev/null
	local out
	out=$(cat "$WORK/session.out")
	echo "$out"
	assert_match "error EPERM" "$out" "denied host still denied after escape attempts"
	assert_eq 0 "$(count denied connections)" "connections that reached the denied host"
	assert_no_match "MOUNTED-BPFFS|PINS-VISIBLE" "$out" "bpffs out of reach"
	assert_match "cgroup-now=0::/sub" "$out" "still inside the fence (in its own sub-cgroup)"
	# cgfence run's Landlock domain refuses /proc/PID/root of a process outside
	assert_match "host-tree-unreachable" "$out" "cgfence run: the host's tree out of reach (Landlock)"
	assert_match "refused via /proc/$helper/root$CG2/cgroup.procs" "$out" "host tree via another process refused"
	assert_no_match "moved via /proc" "$out" "no move through the host's tree"
	# the sub-cgroup the command made goes with the fence
	[ -d "$cg" ] && fail "fence cgroup '$cg' left behind"
	return 0
}

# The fence survives the process that made it: a SIGKILLed cgfence leaves the
# pins, so the filter stays (fail closed) until `cgfence detach`.
test_fail_closed_after_sigkill() {
	need_root || return
	net_up || { fail "test network"; return; }
	listen_tcp "$NS_S" 198.18.0.3 80 denied || return
	fenced_session "
		for i in \$(seq 1 100); do [ -f $WORK/go ] && break; sleep 0.1; done
		$PROBE tcp 198.18.0.3 80 --timeout-ms 1000; sleep 0.2" || return
	local cg=$RUN_CG
	kill -9 "$(cat "$WORK/run.pid")"
	touch "$WORK/go"
	local i
	for i in $(seq 1 50); do
		[ "$(cat "$cg/cgroup.procs" 2>/dev/null)" = "" ] && break
		sleep 0.1
	done
	assert_eq "$FENCE_HOOKS" "$(attachments "$cg")" "attachments after cgfence was killed"
	assert_eq 0 "$(count denied connections)" "connections that reached the denied host"
	$CGFENCE detach --cgroup "$cg" >/dev/null || fail "detach after kill"
	assert_eq 0 "$(attachments "$cg")" "attachments after detach"
	rmdir "$cg" 2>/dev/null
	rm -f "$WORK/run.pid"
}

run_tests "$@"
