#!/bin/bash
# End to end with real podman (Debian's 4.3, --runtime runc), as root: the OCI
# hook build/cgfence-hook, described by etc/cgfence.json and
# etc/cgfence-poststop.json, asks a cgfenced of this suite to fence every
# container annotated cgfence.policy=NAME before its first instruction.
#
# Every test starts its own daemon in the foreground (pins under
# /sys/fs/bpf/$TAG, socket and policies in $WORK) and runs containers from a
# rootfs folder holding busybox-static.  Rootful containers join the client
# namespace of tests/lib.sh (--network ns:/run/netns/$NS_C) and reach the test
# hosts 198.18.0.2 (allowed by policy web) and 198.18.0.3 (denied), where
# listeners count what arrives.  Rootless containers run as a user the suite
# creates (with subordinate ids) and deletes again; they cannot join a
# namespace root made, so they get --network none and start two servers on
# their own loopback, 127.0.0.1:8080 (allowed by policy lo) and :8081 (denied).
#
# Podman, runc, busybox-static, uidmap and dnsmasq-base are installed with
# apt-get when missing.  Busybox has no iptables or nft: the "root with
# CAP_NET_ADMIN" test uses busybox's ip (routes, rules, links) and ping.
#
#   tests/integration/test_podman.sh [test_name...]

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HOOK=$BUILD/cgfence-hook
PIN_ROOT=/sys/fs/bpf/$TAG
SOCK=$WORK/cgfenced.sock
ROOTFS=$WORK/rootfs
HOOKS=$WORK/hooks          # rootful: runs build/cgfence-hook
RL_HOOKS=$WORK/hooks-rl    # rootless: a copy of the hook the test user can run
RL_USER=${TAG}u
RL_XDG=$WORK/xdg
PY=/usr/bin/python3
RUN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
PKGS=(podman runc busybox-static uidmap dnsmasq-base)
DENY_MSG='Operation not permitted'

# the test user reaches the socket (mode 0666), rootfs and hook through $WORK
chmod 0711 "$WORK"

# Installed once for the suite; a failure makes every test skip (fail in CI).
PKGS_OK=
if [ "$(id -u)" = 0 ]; then
	"$TOP/scripts/ensure-packages" "${PKGS[@]}" >"$WORK/pkgs.log" 2>&1 && PKGS_OK=1
fi

# ---- helpers ----------------------------------------------------------------

# make_rootfs: a folder with busybox-static and a link per applet (relative
# links: they must work inside the container), plus what a shell expects.
make_rootfs() {
	local bb a
	[ -x "$ROOTFS/bin/busybox" ] && return 0
	bb=$(dpkg -L busybox-static 2>/dev/null | grep -E '/bin/busybox$' | head -1)
	[ -x "$bb" ] || { echo "busybox-static's busybox not found" >&2; return 1; }
	mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,run,root,www,mnt/cg,tmp} || return 1
	chmod 1777 "$ROOTFS/tmp"
	cp "$bb" "$ROOTFS/bin/busybox" || return 1
	for a in $("$ROOTFS/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$ROOTFS/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
	echo 'root:x:0:' >"$ROOTFS/etc/group"
	: >"$ROOTFS/etc/hosts"
	: >"$ROOTFS/etc/resolv.conf"
	: >"$ROOTFS/etc/hostname"
	# what podman mounts over or links, made here: rootless podman cannot make them
	ln -s /proc/mounts "$ROOTFS/etc/mtab"
	: >"$ROOTFS/run/.containerenv"
	echo hello >"$ROOTFS/www/index.html"
}

# make_hooks DIR HOOK_PATH: the shipped hook descriptions with the hook's path
# and this suite's socket put in.  The runtime starts a hook with only the
# environment its description names: in the sanitizer pass (tests/run-all.sh)
# that is ASAN_OPTIONS and UBSAN_OPTIONS, so that its reports are collected too.
make_hooks() {
	local dir=$1 path=$2 h
	mkdir -p "$dir" || return 1
	for h in cgfence cgfence-poststop; do
		sed -e "s|/usr/local/libexec/cgfence/cgfence-hook|$path|" \
			-e "/\"args\"/s|\"\]|\", \"--socket\", \"$SOCK\"]|" \
			"$TOP/etc/$h.json" >"$dir/$h.json" || return 1
		if [ -n "${ASAN_OPTIONS:-}${UBSAN_OPTIONS:-}" ]; then
			jq --arg a "ASAN_OPTIONS=${ASAN_OPTIONS:-}" --arg u "UBSAN_OPTIONS=${UBSAN_OPTIONS:-}" \
				'.hook.env = [$a, $u]' "$dir/$h.json" >"$dir/$h.json.tmp" &&
				mv "$dir/$h.json.tmp" "$dir/$h.json" || return 1
		fi
	done
	chmod 0755 "$dir" && chmod 0644 "$dir"/*.json
}

# start_daemon: cgfenced (tests/lib.sh: start_cgfenced), 5 s to answer.  No
# policy here has a domain: the resolver (DAEMON_RESOLVER) is never asked.
start_daemon() { start_cgfenced 5 --resolver "${DAEMON_RESOLVER:-127.0.0.1:1}"; }

ctl() { "$CGFENCE" "$@" --socket "$SOCK"; }

# common_setup: root, packages, binaries, cgroup2, rootfs, daemon.
common_setup() {
	need "$CGFENCE" "$CGFENCED" "$HOOK" "$PROBE" || return 1
	if [ -z "$PKGS_OK" ]; then
		skip "cannot install ${PKGS[*]}: $(tail -3 "$WORK/pkgs.log" 2>/dev/null)"
		return 1
	fi
	make_rootfs || { fail "cannot build the rootfs"; return 1; }
	policy web '198.18.0.2:80/tcp'
	policy lo '127.0.0.1:8080/tcp'
	# lo, and consent to run CAP_NET_RAW/CAP_NET_ADMIN without a boundary
	policy lorisk '127.0.0.1:8080/tcp' 'accept-risk net_raw net_admin'
	start_daemon || { fail "cgfenced did not start"; return 1; }
}

# setup: for rootful tests: the test network, listeners on the allowed
# (198.18.0.2:80, "a") and the denied (198.18.0.3:80, "b") host, the hooks.
setup() {
	common_setup || return 1
	make_hooks "$HOOKS" "$HOOK" || { fail "cannot write the hooks"; return 1; }
	net_up || { fail "the test network did not come up"; return 1; }
	# the server end forwards, as podman's bridges do (the boundary needs it)
	ip netns exec "$NS_S" sysctl -qw "net.ipv4.conf.${TAG}b.forwarding=1" \
		"net.ipv6.conf.${TAG}b.forwarding=1" || { fail "forwarding on ${TAG}b"; return 1; }
	listen_tcp "$NS_S" 198.18.0.2 80 a || { fail "listener a"; return 1; }
	listen_tcp "$NS_S" 198.18.0.3 80 b || { fail "listener b"; return 1; }
}

# pm ARGS...: rootful podman with this suite's hooks, bounded.
pm() { timeout 120 podman --runtime runc --hooks-dir "$HOOKS" "$@"; }

# ctr NAME [RUN-OPTS...] -- SCRIPT: runs SCRIPT (busybox sh) in a rootful
# container $TAG-NAME in the client namespace, in the foreground, to its end;
# sets RC and OUT (stdout and stderr, podman's own included).  Its resolver
# is 198.18.0.4 (--dns), never the host's.
ctr() {
	local name=$1 opts=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	pm run --rm --name "$TAG-$name" "${RUN_OPTS[@]}" --network "ns:/run/netns/$NS_C" \
		--dns 198.18.0.4 "${opts[@]}" --rootfs "$ROOTFS" /bin/sh -c "$1" >"$WORK/$name.out" 2>&1 </dev/null
	RC=$?
	OUT=$(cat "$WORK/$name.out")
}

# ctr_bg NAME [RUN-OPTS...] -- SCRIPT: the same, detached; sets CID.
ctr_bg() {
	local name=$1 opts=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	CID=$(pm run -d --name "$TAG-$name" "${RUN_OPTS[@]}" --network "ns:/run/netns/$NS_C" \
		--dns 198.18.0.4 "${opts[@]}" --rootfs "$ROOTFS" /bin/sh -c "$1" 2>"$WORK/$name.err" </dev/null)
	RC=$?
	[ $RC -eq 0 ] || echo "podman run -d: $(cat "$WORK/$name.err")" >&2
	return $RC
}

# The script lines every container uses: a denied then an allowed connect,
# each followed by its exit status.
TRY_DENIED='nc -w 2 198.18.0.3 80 </dev/null 2>&1; echo "denied-rc=$?"'
TRY_ALLOWED='echo hi | nc -w 2 198.18.0.2 80 2>&1; echo "allowed-rc=$?"'

# expect_fenced_output WHAT: OUT shows the denied connect refused (EPERM) and
# the allowed one echoed back.
expect_fenced_output() {
	assert_match "can't connect to remote host \(198\.18\.0\.3\): $DENY_MSG" "$OUT" "$1: denied connect"
	assert_match 'denied-rc=1' "$OUT" "$1: denied connect's status"
	assert_match 'allowed-rc=0' "$OUT" "$1: allowed connect's status"
}

# units NAME: what listener NAME counted.
units() {
	local v
	v=$(sed -n 's/^[a-z]*=\([0-9]*\).*/\1/p' "$WORK/$1.count" 2>/dev/null)
	echo "${v:-0}"
}

# expect_units NAME N WHAT (a positive count is waited for, 2 s at most)
expect_units() {
	local i
	if [ "$2" = 0 ]; then
		sleep 0.2
	else
		for i in $(seq 1 40); do
			[ "$(units "$1")" -ge "$2" ] && break
			sleep 0.05
		done
	fi
	assert_eq "$2" "$(units "$1")" "$3: what listener $1 counted"
}

# status_json: the daemon's status.
status_json() { ctl status --json; }

# fence_of CID: "CGROUP_ID CGROUP LABEL" of the fence whose label names the
# container (by its 12-character id); nothing when there is none.
fence_of() {
	status_json | "$PY" -c '
import json, sys
cid = sys.argv[1][:12]
for f in json.load(sys.stdin)["fences"]:
    if f.get("label", "").startswith("container " + cid):
        print(f["cgroup_id"], f["cgroup"], f["label"])
' "$1"
}

# n_fences: how many fences the daemon reports.
n_fences() { status_json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["fences"]))'; }

# bpf_objs CGROUP_ID: "map ID" / "link ID" for each pin of a fence.
bpf_objs() {
	local f j
	for f in "$PIN_ROOT/$1"/*; do
		[ -e "$f" ] || continue
		if j=$(bpftool -j map show pinned "$f" 2>/dev/null); then
			printf 'map %s\n' "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$j")"
		elif j=$(bpftool -j link show pinned "$f" 2>/dev/null); then
			printf 'link %s\n' "$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$j")"
		fi
	done
}

# bpf_left FILE: the objects of FILE ("map ID" lines) that still exist.
bpf_left() {
	local kind id
	while read -r kind id; do
		bpftool "$kind" show id "$id" >/dev/null 2>&1 && echo "$kind $id"
	done <"$1"
}

# gone CGROUP_ID CGROUP OBJFILE: the fence has left no pin, no status entry,
# no map or link, and its cgroup is gone.
gone() {
	[ ! -e "$PIN_ROOT/$1" ] && [ ! -d "$2" ] && [ -z "$(fence_id_in_status "$1")" ] &&
		[ -z "$(bpf_left "$3")" ]
}

fence_id_in_status() {
	status_json | "$PY" -c '
import json, sys
for f in json.load(sys.stdin)["fences"]:
    if str(f["cgroup_id"]) == sys.argv[1]:
        print(f["cgroup_id"])
' "$1"
}

# what_is_left CGROUP_ID CGROUP OBJFILE: says what gone() found.
what_is_left() {
	[ -e "$PIN_ROOT/$1" ] && echo "pins: $(ls "$PIN_ROOT/$1" | tr '\n' ' ')"
	[ -d "$2" ] && echo "cgroup $2"
	[ -n "$(fence_id_in_status "$1")" ] && echo "status entry"
	bpf_left "$3"
}

# ---- rootless ---------------------------------------------------------------

# rl_setup: the test user (home, subordinate ids, runtime dir), the hook
# copied where it can run it, the hooks dir.
rl_setup() {
	local f start
	common_setup || return 1
	if ! getent passwd "$RL_USER" >/dev/null; then
		for f in /etc/subuid /etc/subgid; do
			[ -e "$f" ] || echo "$f" >>"$WORK/subid.created"
		done
		useradd -m -s /bin/sh "$RL_USER" || { fail "useradd $RL_USER"; return 1; }
		echo "$RL_USER" >"$WORK/user.created"
	fi
	RL_UID=$(id -u "$RL_USER")
	RL_HOME=$(getent passwd "$RL_USER" | cut -d: -f6)
	# useradd gives subordinate ids when /etc/subuid exists; else a free range
	for f in /etc/subuid /etc/subgid; do
		if ! grep -q "^$RL_USER:" "$f" 2>/dev/null; then
			start=$(awk -F: 'BEGIN { m = 100000 } { e = $2 + $3; if (e > m) m = e } END { print m }' \
				"$f" 2>/dev/null)
			echo "$RL_USER:${start:-100000}:65536" >>"$f"
		fi
	done
	mkdir -p "$RL_XDG" "$WORK/bin" &&
		chown "$RL_USER:" "$RL_XDG" && chmod 0700 "$RL_XDG" &&
		install -m 0755 "$HOOK" "$WORK/bin/cgfence-hook" &&
		make_hooks "$RL_HOOKS" "$WORK/bin/cgfence-hook" ||
		{ fail "cannot prepare the test user's files"; return 1; }
}

# as_user CMD...: CMD as the test user, in its home, with a clean environment.
as_user() {
	timeout 120 runuser -u "$RL_USER" -- env -i HOME="$RL_HOME" USER="$RL_USER" \
		LOGNAME="$RL_USER" XDG_RUNTIME_DIR="$RL_XDG" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		sh -c 'cd "$HOME" && exec "$@"' sh "$@"
}

# rlpm ARGS...: rootless podman with this suite's hooks.
rlpm() { as_user podman --runtime runc --hooks-dir "$RL_HOOKS" "$@"; }

# The rootless container's servers and tries: the denied port first.
RL_SERVERS='httpd -p 127.0.0.1:8080 -h /www && httpd -p 127.0.0.1:8081 -h /www || echo "servers-failed"'
RL_TRY_DENIED='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 8081 2>&1; echo "denied-rc=$?"'
RL_TRY_ALLOWED='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 8080 2>&1 | tail -1; echo "allowed-rc=$?"'

# rctr NAME [RUN-OPTS...] -- SCRIPT: a rootless container, --network none, in
# the foreground; sets RC and OUT.
rctr() {
	local name=$1 opts=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	rlpm run --rm --name "$TAG-$name" "${RUN_OPTS[@]}" --network none "${opts[@]}" \
		--rootfs "$ROOTFS" /bin/sh -c "$1" >"$WORK/$name.out" 2>&1 </dev/null
	RC=$?
	OUT=$(cat "$WORK/$name.out")
}

rl_cleanup() {
	local pid i f
	getent passwd "$RL_USER" >/dev/null || return 0
	RL_UID=$(id -u "$RL_USER")
	RL_HOME=$(getent passwd "$RL_USER" | cut -d: -f6)
	as_user podman rm -af -t 0 >/dev/null 2>&1
	# what podman leaves running as the user (its pause process, conmon):
	# every process of this uid, which only this suite created
	for i in 1 2 3; do
		pid=$(pgrep -u "$RL_UID")
		[ -z "$pid" ] && break
		# shellcheck disable=SC2086 # one pid a word
		kill -KILL $pid 2>/dev/null
		sleep 0.2
	done
	if [ -f "$WORK/user.created" ]; then
		userdel -r "$RL_USER" >/dev/null 2>&1
		sed -i "/^$RL_USER:/d" /etc/subuid /etc/subgid 2>/dev/null
		find /tmp /var/tmp -maxdepth 1 -uid "$RL_UID" -exec rm -rf {} + 2>/dev/null
		rm -f "$WORK/user.created"
	fi
	# files useradd made for the test user alone, empty again
	if [ -f "$WORK/subid.created" ]; then
		while read -r f; do
			[ -f "$f" ] && [ ! -s "$f" ] && rm -f "$f"
		done <"$WORK/subid.created"
		rm -f "$WORK/subid.created"
	fi
	rm -rf "$RL_XDG"
}

# ---- cleanup ----------------------------------------------------------------

suite_cleanup() {
	local d names
	if command -v podman >/dev/null; then
		names=$(timeout 30 podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^$TAG-")
		# shellcheck disable=SC2086 # one name a word
		[ -n "$names" ] && timeout 60 podman rm -f -t 0 $names >/dev/null 2>&1
	fi
	rl_cleanup
	stop_daemons
	kill_dnsmasq "$WORK/dnsmasq.pid" "$WORK/dnsmasq-up.pid"
	kill_listeners
	net_down
	# the --cgroup-parent test's parent, on cgroup2 and where podman made it on v1
	# (podman puts conmon in PARENT/conmon)
	for d in "$CG2/$TAG-parent" $(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") {
			if ($(i + 1) == "cgroup") print $5 "/'"$TAG"'-parent"; break } }' /proc/self/mountinfo); do
		[ -d "$d" ] || continue
		rmdir "$d"/*/ 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	# cgroups the daemon made for rootless containers of this suite
	if [ -n "$CG2" ] && [ -f "$WORK/made.cgroups" ]; then
		while read -r d; do
			remove_cgroup_tree "$d"
		done <"$WORK/made.cgroups"
		rm -f "$WORK/made.cgroups"
	fi
	# every pin of this suite: links go with them, so nothing stays fenced
	[ -d "$PIN_ROOT" ] && rm -rf "${PIN_ROOT:?}"
	rm -rf "$WORK/pol" "$WORK/daemon.log" "$SOCK" "$SOCK.lock" "$WORK"/*.out "$WORK"/*.err \
		"$WORK"/*.count "$WORK"/*.objs "$WORK/stdin.fifo"
}

# ---- the hook on its own ----------------------------------------------------

# The hook fails closed on everything short of a fence, with one line.
test_hook_fails_closed() {
	common_setup || return
	local out rc t0 mute=$WORK/mute.sock
	mkdir -p "$WORK/bundle" && echo '{"mounts":[]}' >"$WORK/bundle/config.json"

	# not opted in: nothing to do, nothing said
	out=$(echo '{"id":"x","pid":999999999,"bundle":"/nonexistent","annotations":{}}' |
		"$HOOK" create --socket "$SOCK" 2>&1)
	rc=$?
	assert_eq 0 "$rc" "no cgfence.policy: exit status"
	assert_eq "" "$out" "no cgfence.policy: output"

	# malformed state, missing pid, unreadable bundle, over 1 MiB
	out=$(echo '{"id":' | "$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "malformed state: exit status"
	assert_match '^cgfence-hook: malformed container state: ' "$out" "malformed state"
	out=$(echo '{"id":"x","bundle":"/b","annotations":{"cgfence.policy":"web"}}' |
		"$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "no pid: exit status"
	assert_eq "cgfence-hook: malformed container state: 'pid': missing" "$out" "no pid"
	out=$(echo '{"id":"x","pid":999999999,"bundle":"/nonexistent","annotations":{"cgfence.policy":"web"}}' |
		"$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "unreadable bundle: exit status"
	assert_match "^cgfence-hook: cannot read '/nonexistent/config.json'" "$out" "unreadable bundle"
	mkdir -p "$WORK/badcaps" &&
		echo '{"process":{"capabilities":{"bounding":["CAP_NO_SUCH"]}},"mounts":[]}' \
		>"$WORK/badcaps/config.json"
	out=$(echo "{\"id\":\"x\",\"pid\":999999,\"bundle\":\"$WORK/badcaps\",\"annotations\":{\"cgfence.policy\":\"web\"}}" |
		"$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "unknown capability: exit status"
	assert_eq "cgfence-hook: malformed '$WORK/badcaps/config.json': 'process.capabilities.bounding[0]': unknown capability 'CAP_NO_SUCH'" \
		"$out" "unknown capability"
	out=$(head -c 1100000 /dev/zero | "$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "state over 1 MiB: exit status"
	assert_eq "cgfence-hook: cannot read the container state on stdin: more than 1 MiB" "$out" \
		"state over 1 MiB"

	# the daemon refuses: unknown policy, no such process
	out=$(echo "{\"id\":\"x\",\"pid\":999999,\"bundle\":\"$WORK/bundle\",\"annotations\":{\"cgfence.policy\":\"nope\"}}" |
		"$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "unknown policy: exit status"
	assert_match "^cgfence-hook: cgfenced refused: attach: no policy 'nope'" "$out" "unknown policy"
	out=$(echo "{\"id\":\"x\",\"pid\":999999999,\"bundle\":\"$WORK/bundle\",\"annotations\":{\"cgfence.policy\":\"web\"}}" |
		"$HOOK" create --socket "$SOCK" 2>&1)
	assert_eq 1 "$?" "no such process: exit status"
	assert_match '^cgfence-hook: cgfenced refused: attach: no process 999999999$' "$out" \
		"no such process"

	# no daemon: create fails, poststop only reports
	out=$(echo "{\"id\":\"x\",\"pid\":999999999,\"bundle\":\"$WORK/bundle\",\"annotations\":{\"cgfence.policy\":\"web\"}}" |
		"$HOOK" create --socket "$WORK/none.sock" 2>&1)
	assert_eq 1 "$?" "no daemon: exit status"
	assert_match "^cgfence-hook: cgfenced is not running \(nothing listens on '$WORK/none.sock'\)" \
		"$out" "no daemon"
	out=$(echo '{}' | "$HOOK" poststop --socket "$WORK/none.sock" 2>&1)
	assert_eq 0 "$?" "poststop without daemon: exit status"
	assert_match '^cgfence-hook: release: ' "$out" "poststop without daemon"
	out=$(echo '{}' | "$HOOK" poststop --socket "$SOCK" 2>&1)
	assert_eq 0 "$?" "poststop: exit status"
	assert_eq "" "$out" "poststop: output"

	# a daemon that never answers: bounded by --timeout-ms
	"$PY" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8); open(sys.argv[1] + ".up", "w").close()
time.sleep(20)' "$mute" >/dev/null 2>&1 &
	echo $! >>"$WORK/pids"
	wait_for 5 test -e "$mute.up" || { fail "mute socket did not come up"; return; }
	t0=$(date +%s%N)
	out=$(echo "{\"id\":\"x\",\"pid\":999999999,\"bundle\":\"$WORK/bundle\",\"annotations\":{\"cgfence.policy\":\"web\"}}" |
		"$HOOK" create --socket "$mute" --timeout-ms 500 2>&1)
	rc=$?
	t0=$((($(date +%s%N) - t0) / 1000000))
	assert_eq 1 "$rc" "silent daemon: exit status"
	assert_eq "cgfence-hook: no answer from cgfenced within 500 ms" "$out" "silent daemon"
	[ "$t0" -lt 3000 ] || fail "silent daemon: the hook took $t0 ms"
	# a state that never ends: bounded too (whole-run alarm)
	t0=$(date +%s%N)
	mkfifo "$WORK/stdin.fifo" || { fail "mkfifo"; return; }
	sleep 8 >"$WORK/stdin.fifo" &
	echo $! >>"$WORK/pids"
	out=$("$HOOK" create --socket "$mute" --timeout-ms 500 2>&1 <"$WORK/stdin.fifo")
	rc=$?
	t0=$((($(date +%s%N) - t0) / 1000000))
	assert_eq 1 "$rc" "endless stdin: exit status"
	assert_match '^cgfence-hook: timed out' "$out" "endless stdin"
	[ "$t0" -lt 4000 ] || fail "endless stdin: the hook took $t0 ms"
}

# ---- rootful ----------------------------------------------------------------

# The container's first command already meets the fence; status and log name
# the container.
test_rootful_fenced_from_first_instruction() {
	setup || return
	local f cg
	ctr_bg first --annotation cgfence.policy=web --annotation "cgfence.name=$TAG-first" -- \
		"$TRY_DENIED; $TRY_ALLOWED; echo END; sleep 60" || { fail "podman run"; return; }
	first_done() { pm logs "$TAG-first" 2>&1 | grep -q END; }
	wait_for 20 first_done || fail "the container did not finish its tries"
	OUT=$(pm logs "$TAG-first" 2>&1)
	expect_fenced_output "rootful"
	assert_match '^nc: can.t connect to remote host \(198\.18\.0\.3\)' "$(head -1 <<<"$OUT")" \
		"the first thing the container printed"
	expect_units a 1 "rootful allowed"
	expect_units b 0 "rootful denied"

	f=$(fence_of "$CID")
	[ -n "$f" ] || { fail "no fence in status for container $CID"; return; }
	cg=$(cut -d' ' -f2 <<<"$f")
	assert_eq "$CG2/libpod_parent/libpod-$CID" "$cg" "the fenced cgroup"
	assert_eq "container ${CID:0:12} $TAG-first" "$(cut -d' ' -f3- <<<"$f")" "the fence's label"
	assert_match "\"daddr\":\"198\.18\.0\.3\".*\"label\":\"container ${CID:0:12} $TAG-first\"" \
		"$(ctl log --json)" "the deny event names the container"
	assert_match "container ${CID:0:12} $TAG-first" "$(ctl status)" "cgfence status names the container"
}

# cgfence.audit=true: nothing denied, what would be is logged as audit.
test_rootful_audit_annotation() {
	setup || return
	local f
	ctr audit --annotation cgfence.policy=web --annotation cgfence.audit=true -- \
		"$TRY_DENIED; $TRY_ALLOWED"
	assert_eq 0 "$RC" "podman run: exit status"
	assert_match 'denied-rc=0' "$OUT" "audit: the connect to 198.18.0.3 goes through"
	expect_units b 1 "audit"
	assert_match '"action":"audit","hook":"connect4","protocol":"tcp","dport":80,"daddr":"198\.18\.0\.3"' \
		"$(ctl log --json)" "the audit event"
	assert_match 'in audit mode' "$(cat "$WORK/daemon.log")" "the daemon's log"
}

test_rootful_unannotated_untouched() {
	setup || return
	ctr plain -- "$TRY_DENIED; $TRY_ALLOWED"
	assert_eq 0 "$RC" "podman run: exit status"
	assert_match 'denied-rc=0' "$OUT" "unfenced: the connect to 198.18.0.3"
	assert_match 'allowed-rc=0' "$OUT" "unfenced: the connect to 198.18.0.2"
	expect_units a 1 "unfenced"
	expect_units b 1 "unfenced"
	assert_eq 0 "$(n_fences)" "fences"
	if grep -q "request 'attach'" "$WORK/daemon.log"; then
		fail "the daemon was asked to attach for an unannotated container"
	fi
}

# DNS: the container's resolvers (--dns, its resolv.conf) on port 53 only.
test_rootful_container_dns() {
	setup || return
	local i
	nsenter --net="/run/netns/$NS_S" -- dnsmasq --no-daemon --conf-file=/dev/null --no-resolv \
		--no-hosts --bind-interfaces --listen-address=198.18.0.4 --listen-address=198.18.0.5 \
		--port=53 --address=/svc.test/198.18.0.2 --address=/svc.test/2001:db8::2 --user=root --group=root \
		>"$WORK/dnsmasq.log" 2>&1 </dev/null &
	echo $! >"$WORK/dnsmasq.pid"
	for i in $(seq 1 50); do
		nsenter --net="/run/netns/$NS_S" -- grep -q ':0035 ' /proc/net/udp && break
		sleep 0.1
	done
	listen_tcp "$NS_S" 198.18.0.4 80 d80 || { fail "listener"; return; }
	ctr dns --annotation cgfence.policy=web -- '
		nslookup svc.test 2>&1; echo "ns-rc=$?"
		nslookup svc.test 198.18.0.5 2>&1; echo "other-ns-rc=$?"
		nc -w 2 198.18.0.4 80 </dev/null 2>&1; echo "dns-host-80-rc=$?"'
	assert_eq 0 "$RC" "podman run: exit status"
	assert_match 'Address: 198\.18\.0\.2' "$OUT" "the container's resolver answers"
	assert_match 'ns-rc=0' "$OUT" "the container's resolver"
	assert_match 'other-ns-rc=1' "$OUT" "another resolver"
	assert_match "can't connect to remote host \(198\.18\.0\.4\): $DENY_MSG" "$OUT" \
		"the resolver's host on port 80"
	expect_units d80 0 "the resolver's host on port 80"
	assert_match '"protocol":"udp","dport":53,"daddr":"198\.18\.0\.5"' "$(ctl log --json)" \
		"the deny event of the other resolver"
}

# DNS proxy mode (policy line 'dns proxy'): the container's own resolver
# (--dns 198.18.0.4) is steered to cgfenced's proxy, which listens in the
# container's network namespace; the policy's name is answered from the
# daemon's upstream and opened at once, another name is refused and reaches
# neither resolver.
test_rootful_dns_proxy() {
	setup || return
	local i p
	nsenter --net="/run/netns/$NS_S" -- dnsmasq --no-daemon --conf-file=/dev/null --no-resolv \
		--no-hosts --bind-interfaces --listen-address=198.18.0.4 --port=53 \
		--address=/test/198.18.0.3 --log-queries --log-facility="$WORK/ctr-dns.log" \
		--user=root --group=root >/dev/null 2>&1 </dev/null &
	echo $! >"$WORK/dnsmasq.pid"
	p=$((20000 + RANDOM % 30000))
	dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
		--listen-address=127.0.0.1 --port="$p" --address=/svc.test/198.18.0.2 \
		--address=/svc.test/2001:db8::2 \
		--log-queries --log-facility="$WORK/up-dns.log" --user=root \
		--group=root >/dev/null 2>&1 </dev/null &
	echo $! >"$WORK/dnsmasq-up.pid"
	for i in $(seq 1 50); do
		grep -q "$(printf '0100007F:%04X' "$p")" /proc/net/udp && break
		sleep 0.1
	done
	policy pxweb 'dns proxy' 'svc.test:80/tcp'
	stop_daemon
	DAEMON_RESOLVER=127.0.0.1:$p start_daemon || { fail "cgfenced did not start"; return; }
	ctr px --annotation cgfence.policy=pxweb -- '
		nslookup svc.test 2>&1; echo "ns-rc=$?"
		echo hi | nc -w 2 198.18.0.2 80 2>&1; echo "allowed-rc=$?"
		nslookup evil.test 2>&1; echo "evil-rc=$?"
		nslookup evil2.test 198.18.0.9 2>&1; echo "evil2-rc=$?"
		nc -w 2 198.18.0.3 80 </dev/null 2>&1; echo "denied-rc=$?"'
	assert_eq 0 "$RC" "podman run: exit status"
	assert_match 'Address: 198\.18\.0\.2' "$OUT" "svc.test through the proxy"
	assert_match 'ns-rc=0' "$OUT" "svc.test"
	assert_match 'allowed-rc=0' "$OUT" "connect to svc.test's address"
	assert_match 'evil-rc=1' "$OUT" "evil.test"
	assert_match 'evil2-rc=1' "$OUT" "evil2.test via another resolver"
	assert_match "can't connect to remote host \(198\.18\.0\.3\): $DENY_MSG" "$OUT" "198.18.0.3"
	expect_units a 1 "svc.test's address"
	expect_units b 0 "198.18.0.3"
	assert_eq 0 "$(cat "$WORK/up-dns.log" "$WORK/ctr-dns.log" 2>/dev/null | grep -c 'query.*evil')" \
		"queries for evil names at a resolver"
	assert_eq 0 "$(cat "$WORK/ctr-dns.log" 2>/dev/null | grep -c 'query')" \
		"queries at the container's own resolver"
	grep -q 'query\[A\] svc\.test' "$WORK/up-dns.log" || fail "the upstream saw no query for svc.test"
	assert_match '"dns": "proxy"' "$(ctl status --json)" "status: proxy mode"
}

test_rootful_exec_fenced() {
	setup || return
	local cg
	ctr_bg ex --annotation cgfence.policy=web -- 'sleep 60' || { fail "podman run"; return; }
	OUT=$(pm exec "$TAG-ex" sh -c "grep '^0::' /proc/self/cgroup; $TRY_DENIED; $TRY_ALLOWED" 2>&1)
	expect_fenced_output "podman exec"
	assert_match "^0::/libpod_parent/libpod-$CID\$" "$(head -1 <<<"$OUT")" "the exec'd process's cgroup"
	expect_units a 1 "podman exec"
	expect_units b 0 "podman exec"
	# a detached exec too
	pm exec -d "$TAG-ex" sh -c "$TRY_DENIED >/tmp/exec-d.out" >/dev/null 2>&1
	wait_for 5 grep -q denied-rc "$ROOTFS/tmp/exec-d.out" 2>/dev/null
	OUT=$(cat "$ROOTFS/tmp/exec-d.out" 2>/dev/null)
	rm -f "$ROOTFS/tmp/exec-d.out"
	assert_match "denied-rc=1" "$OUT" "podman exec -d"
	expect_units b 0 "podman exec -d"
	cg=$(fence_of "$CID" | cut -d' ' -f2)
	assert_eq "$CG2/libpod_parent/libpod-$CID" "$cg" "still one fence, on the container's cgroup"
}

# Root in the container with CAP_NET_ADMIN and CAP_NET_RAW rewrites routes,
# rules and links (busybox ip; busybox has no iptables or nft) and uses raw
# sockets: the fence does not move.
test_rootful_net_admin_changes_nothing() {
	setup || return
	ctr netadmin --annotation cgfence.policy=web --cap-add NET_ADMIN,NET_RAW -- "
		$TRY_DENIED
		ip route flush all; echo \"flush-rc=\$?\"
		ip rule add from all lookup main pref 10; echo \"rule-rc=\$?\"
		ip link set ${TAG}a down; ip link set ${TAG}a up; echo \"link-rc=\$?\"
		ip route add 198.18.0.0/24 dev ${TAG}a 2>/dev/null
		ip route replace 198.18.0.0/24 dev ${TAG}a; echo \"route-rc=\$?\"
		ip neigh flush all
		tc qdisc add dev ${TAG}a root pfifo 2>/dev/null
		sleep 1
		$TRY_DENIED
		ping -c 1 -W 1 198.18.0.3 2>&1; echo \"ping-rc=\$?\"
		$TRY_ALLOWED"
	assert_eq 0 "$RC" "podman run: exit status"
	assert_match 'flush-rc=0' "$OUT" "ip route flush (root with CAP_NET_ADMIN)"
	assert_match 'rule-rc=0' "$OUT" "ip rule add"
	assert_match 'route-rc=0' "$OUT" "ip route replace"
	assert_eq 2 "$(grep -c "can't connect to remote host (198.18.0.3): $DENY_MSG" <<<"$OUT")" \
		"denied before and after the ip commands"
	assert_match "ping: sendto: $DENY_MSG" "$OUT" "raw ICMP (CAP_NET_RAW) to the denied host"
	assert_match 'allowed-rc=0' "$OUT" "allowed after the ip commands"
	expect_units a 1 "net admin"
	expect_units b 0 "net admin"
}

# A process that makes a sub-cgroup in its own cgroup namespace and moves
# itself there stays fenced.  Mounting cgroup2 takes CAP_SYS_ADMIN: the
# container gets it, more than the threat model gives a rootful container.
test_rootful_subcgroup_still_fenced() {
	setup || return
	ctr subcg --annotation cgfence.policy=web --cap-add SYS_ADMIN --cgroupns=private -- "
		mount -t cgroup2 none /mnt/cg || echo mount-failed
		mkdir /mnt/cg/sub /mnt/cg/sub/deeper && echo \$\$ >/mnt/cg/sub/deeper/cgroup.procs
		grep '^0::' /proc/self/cgroup
		$TRY_DENIED
		sh -c '$TRY_DENIED'
		$TRY_ALLOWED
		echo \$\$ >/mnt/cg/cgroup.procs; rmdir /mnt/cg/sub/deeper /mnt/cg/sub; umount /mnt/cg"
	assert_eq 0 "$RC" "podman run: exit status"
	assert_no_match 'mount-failed' "$OUT" "mount cgroup2 in the container"
	assert_match '^0::/sub/deeper$' "$OUT" "the process's cgroup (in its namespace)"
	assert_eq 2 "$(grep -c "can't connect to remote host (198.18.0.3): $DENY_MSG" <<<"$OUT")" \
		"denied from the sub-cgroup (the process and a child)"
	assert_match 'allowed-rc=0' "$OUT" "allowed from the sub-cgroup"
	expect_units a 1 "sub-cgroup"
	expect_units b 0 "sub-cgroup"
}

# A rootful container in a namespace of its own gets a boundary on the host
# end of its veth, found by the hook (here the veth's peer is in the server
# namespace, named under /run/netns); status says which vectors it closes.
# With CAP_NET_RAW the container sends a DHCP discover from an AF_PACKET
# socket (busybox udhcpc), which no cgroup hook sees: the boundary drops it.
test_rootful_boundary_found() {
	setup || return
	listen_udp "$NS_S" 0.0.0.0 67 dhcp || { fail "listener dhcp"; return; }
	ctr_bg bnd --annotation cgfence.policy=web --cap-add NET_RAW,NET_ADMIN -- "
		$TRY_DENIED; $TRY_ALLOWED
		udhcpc -i ${TAG}a -n -q -t 2 -T 1 -s /bin/true 2>&1; echo \"udhcpc-rc=\$?\"
		echo END; sleep 60" || { fail "podman run"; return; }
	bnd_done() { pm logs "$TAG-bnd" 2>&1 | grep -q END; }
	wait_for 20 bnd_done || fail "the container did not finish its tries"
	OUT=$(pm logs "$TAG-bnd" 2>&1)
	expect_fenced_output "behind a boundary"
	assert_match 'broadcasting discover' "$OUT" "udhcpc sent (AF_PACKET)"
	expect_units dhcp 0 "DHCP discovers from an AF_PACKET socket through the boundary"
	local j
	j=$(status_json | "$PY" -c '
import json, sys
cid = sys.argv[1][:12]
for f in json.load(sys.stdin)["fences"]:
    if f.get("label", "").startswith("container " + cid):
        p = f["protections"]
        b = p["boundary"] or {}
        print(b.get("interface"), b.get("netns"), b.get("state"),
              ",".join(str(v["open"]) for v in p["vectors"]), f["counters"]["boundary"]["denied"])
' "$CID")
	read -r ifname netns state opens denied <<<"$j"
	assert_eq "${TAG}b" "$ifname" "the boundary's interface (status: $j)"
	assert_eq "/run/netns/$NS_S" "$netns" "the boundary's namespace"
	assert_eq attached "$state" "the boundary's state"
	assert_eq "False,False" "$opens" "vectors open behind the boundary"
	[ "${denied:-0}" -ge 1 ] || fail "the boundary counted no denial (status: $j)"
	assert_match "boundary on ${TAG}b" "$(ctl status)" "status text"
}

# Fail closed: no daemon, no container; the hook's reason is what podman says.
test_rootful_daemon_down_refuses() {
	setup || return
	stop_daemon
	ctr down --annotation cgfence.policy=web -- "echo STARTED; $TRY_DENIED"
	assert_eq 1 "$([ "$RC" -ne 0 ] && echo 1 || echo 0)" "podman run fails (exit $RC)"
	assert_match "cgfence-hook: cgfenced is not running \(nothing listens on '$SOCK'\)" "$OUT" \
		"podman shows the hook's reason"
	assert_no_match 'STARTED' "$OUT" "the container's command"
	expect_units b 0 "daemon down"
	assert_eq "" "$(timeout 30 podman ps -a --format '{{.Names}}' | grep "^$TAG-down\$")" \
		"no container left"
	# unknown policy: the same, with the daemon's reason
	start_daemon || { fail "restart"; return; }
	ctr nopol --annotation cgfence.policy=nosuch -- "echo STARTED"
	[ "$RC" -ne 0 ] || fail "unknown policy: podman run succeeded"
	assert_match "cgfence-hook: cgfenced refused: attach: no policy 'nosuch'" "$OUT" \
		"unknown policy: podman shows the reason"
	assert_no_match 'STARTED' "$OUT" "unknown policy: the container's command"
}

# After the container stops: its pins, maps, links and status entry are gone
# within 5 s (the poststop hook asks; the daemon's check is the backstop).
test_rootful_stop_removes_fence() {
	setup || return
	local f id cg t0 ms
	ctr_bg stop --annotation cgfence.policy=web -- 'sleep 60' || { fail "podman run"; return; }
	f=$(fence_of "$CID")
	[ -n "$f" ] || { fail "no fence for the container"; return; }
	id=${f%% *}
	cg=$(cut -d' ' -f2 <<<"$f")
	bpf_objs "$id" >"$WORK/stop.objs"
	[ "$(grep -c . "$WORK/stop.objs")" -ge 5 ] ||
		fail "expected the fence's maps and links pinned, found: $(cat "$WORK/stop.objs")"
	t0=$(date +%s%N)
	timeout 60 podman stop -t 0 "$TAG-stop" >/dev/null 2>&1 || fail "podman stop"
	if wait_for 5 gone "$id" "$cg" "$WORK/stop.objs"; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		echo "    fence gone $ms ms after podman stop began" >&2
	else
		fail "5 s after stop: $(what_is_left "$id" "$cg" "$WORK/stop.objs" | tr '\n' ';')"
	fi
	grep -q "request 'release'" "$WORK/daemon.log" || fail "the poststop hook did not ask to release"
}

# 20 containers started and stopped leave no pin, cgroup, map or link.
test_rootful_twenty_containers_leave_nothing() {
	setup || return
	local i f id cg left=
	: >"$WORK/loop.objs"
	: >"$WORK/loop.fences"
	for i in $(seq 1 20); do
		ctr_bg "loop$i" --annotation cgfence.policy=web -- 'sleep 60' ||
			{ fail "podman run $i"; break; }
		f=$(fence_of "$CID")
		[ -n "$f" ] || { fail "container $i: no fence"; break; }
		id=${f%% *}
		echo "$id $(cut -d' ' -f2 <<<"$f")" >>"$WORK/loop.fences"
		bpf_objs "$id" >>"$WORK/loop.objs"
		timeout 60 podman rm -f -t 0 "$TAG-loop$i" >/dev/null 2>&1 || fail "podman rm $i"
	done
	assert_eq 20 "$(grep -c . "$WORK/loop.fences")" "containers fenced"
	all_gone() {
		[ "$(n_fences)" = 0 ] || return 1
		[ -z "$(ls -A "$PIN_ROOT" 2>/dev/null)" ] || return 1
		[ -z "$(bpf_left "$WORK/loop.objs")" ] || return 1
		while read -r id cg; do [ -d "$cg" ] && return 1; done <"$WORK/loop.fences"
		return 0
	}
	if ! wait_for 5 all_gone; then
		left="fences=$(n_fences) pins=$(ls -A "$PIN_ROOT" | tr '\n' ' ')"
		left="$left bpf=$(bpf_left "$WORK/loop.objs" | tr '\n' ' ')"
		while read -r id cg; do [ -d "$cg" ] && left="$left cgroup=$cg"; done <"$WORK/loop.fences"
		fail "5 s after the last container: $left"
	fi
	assert_eq "" "$(ls -d "$CG2"/cgfence/pid-* 2>/dev/null)" "dedicated cgroups"
}

# Without the hook: a parent cgroup fenced once (`cgfence attach --policy`),
# every container started with --cgroup-parent under it is fenced.
test_rootful_cgroup_parent() {
	setup || return
	local parent=$CG2/$TAG-parent out
	mkdir "$parent" || { fail "mkdir $parent"; return; }
	out=$(ctl attach --policy web --cgroup "$parent" --label "$TAG parent" 2>&1) ||
		{ fail "cgfence attach: $out"; return; }
	ctr cgp --cgroup-parent "/$TAG-parent" -- "grep '^0::' /proc/self/cgroup; $TRY_DENIED; $TRY_ALLOWED"
	assert_eq 0 "$RC" "podman run: exit status"
	assert_match "^0::/$TAG-parent/libpod-[0-9a-f]+\$" "$OUT" "the container's cgroup"
	expect_fenced_output "--cgroup-parent"
	expect_units a 1 "--cgroup-parent"
	expect_units b 0 "--cgroup-parent"
	assert_eq 1 "$(n_fences)" "fences (the parent's only)"
	ctl detach --cgroup "$parent" >/dev/null 2>&1 || fail "cgfence detach"
}

# ---- rootless ---------------------------------------------------------------

test_rootless_fenced_from_first_instruction() {
	rl_setup || return
	local cid pid f cg
	cid=$(rlpm run -d --name "$TAG-rl" "${RUN_OPTS[@]}" --network none \
		--annotation cgfence.policy=lo --rootfs "$ROOTFS" /bin/sh -c \
		"$RL_SERVERS; $RL_TRY_DENIED; $RL_TRY_ALLOWED; grep '^0::' /proc/self/cgroup; echo END; sleep 60" \
		2>"$WORK/rl.err")
	[ -n "$cid" ] || { fail "rootless podman run: $(cat "$WORK/rl.err")"; return; }
	rl_done() { rlpm logs "$TAG-rl" 2>&1 | grep -q END; }
	wait_for 20 rl_done || fail "the container did not finish its tries"
	OUT=$(rlpm logs "$TAG-rl" 2>&1)
	assert_no_match 'servers-failed' "$OUT" "the container's servers"
	assert_match "can't connect to remote host \(127\.0\.0\.1\): $DENY_MSG" "$OUT" \
		"rootless: denied port 8081"
	assert_match 'denied-rc=1' "$OUT" "rootless: denied port's status"
	assert_match 'allowed-rc=0' "$OUT" "rootless: allowed port 8080"
	assert_match 'hello' "$OUT" "rootless: the page from port 8080"
	pid=$(rlpm inspect -f '{{.State.Pid}}' "$TAG-rl")
	assert_match "^0::/cgfence/pid-$pid\$" "$(grep '^0::' <<<"$OUT")" \
		"the container's cgroup: one of its own, made by the daemon"
	echo "$CG2/cgfence/pid-$pid" >>"$WORK/made.cgroups"
	assert_eq "$RL_UID" "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" \
		"the container's init belongs to the user"
	f=$(fence_of "$cid")
	[ -n "$f" ] || { fail "no fence for the rootless container"; return; }
	cg=$(cut -d' ' -f2 <<<"$f")
	assert_eq "$CG2/cgfence/pid-$pid" "$cg" "the fenced cgroup"
	assert_match "request 'attach' from pid [0-9]+ uid $RL_UID " "$(cat "$WORK/daemon.log")" \
		"the hook asked as the user"
	assert_match "\"dport\":8081,\"daddr\":\"127\.0\.0\.1\".*\"label\":\"container ${cid:0:12}\"" \
		"$(ctl log --json)" "the deny event names the container"
	# stop: the dedicated cgroup and the fence go
	id=${f%% *}
	bpf_objs "$id" >"$WORK/rl.objs"
	rlpm stop -t 0 "$TAG-rl" >/dev/null 2>&1 || fail "podman stop"
	wait_for 5 gone "$id" "$cg" "$WORK/rl.objs" ||
		fail "5 s after stop: $(what_is_left "$id" "$cg" "$WORK/rl.objs" | tr '\n' ';')"
}

# DNS proxy mode for a rootless container with no network at all: the proxy
# listens on the container's own loopback (the daemon enters the namespace
# the user owns) and asks the daemon's upstream; svc.test (127.0.0.1 here)
# opens 127.0.0.1:8080 only once it was answered, evil.test is refused.
test_rootless_dns_proxy() {
	rl_setup || return
	local i p
	p=$((20000 + RANDOM % 30000))
	dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
		--listen-address=127.0.0.1 --port="$p" --address=/svc.test/127.0.0.1 \
		--address=/svc.test/::1 --log-queries --log-facility="$WORK/up-dns.log" \
		--user=root --group=root >/dev/null 2>&1 </dev/null &
	echo $! >"$WORK/dnsmasq-up.pid"
	for i in $(seq 1 50); do
		grep -q "$(printf '0100007F:%04X' "$p")" /proc/net/udp && break
		sleep 0.1
	done
	policy rlpx 'dns proxy' 'svc.test:8080/tcp'
	stop_daemon
	DAEMON_RESOLVER=127.0.0.1:$p start_daemon || { fail "cgfenced did not start"; return; }
	rctr rlpx --annotation cgfence.policy=rlpx -- "$RL_SERVERS
		printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 8080 2>&1; echo \"before-rc=\$?\"
		nslookup svc.test 198.18.0.9 2>&1; echo \"ns-rc=\$?\"
		$RL_TRY_ALLOWED; $RL_TRY_DENIED
		nslookup evil.test 198.18.0.9 2>&1; echo \"evil-rc=\$?\""
	assert_eq 0 "$RC" "rootless podman run: exit status"
	assert_no_match 'servers-failed' "$OUT" "the container's servers"
	assert_match "before-rc=1" "$OUT" "127.0.0.1:8080 before svc.test was answered"
	assert_match 'Address: 127\.0\.0\.1' "$OUT" "svc.test through the proxy"
	assert_match 'ns-rc=0' "$OUT" "svc.test"
	assert_match 'allowed-rc=0' "$OUT" "127.0.0.1:8080 once svc.test was answered"
	assert_match 'hello' "$OUT" "the page from port 8080"
	assert_match 'denied-rc=1' "$OUT" "127.0.0.1:8081"
	assert_match 'evil-rc=1' "$OUT" "evil.test"
	assert_eq 0 "$(grep -c 'query.*evil' "$WORK/up-dns.log")" "queries for evil.test upstream"
	assert_match "request 'attach' from pid [0-9]+ uid $RL_UID " "$(cat "$WORK/daemon.log")" \
		"the hook asked as the user"
}

test_rootless_unannotated_untouched() {
	rl_setup || return
	rctr rlplain -- "$RL_SERVERS; $RL_TRY_DENIED; $RL_TRY_ALLOWED"
	assert_eq 0 "$RC" "rootless podman run: exit status ($OUT)"
	assert_match 'denied-rc=0' "$OUT" "unfenced: port 8081"
	assert_match 'allowed-rc=0' "$OUT" "unfenced: port 8080"
	assert_eq 0 "$(n_fences)" "fences"
}

# A rootless container has no veth to the host (here --network none; slirp4netns
# and pasta use a tap device): no boundary program can be put where its
# traffic leaves.  Granted CAP_NET_RAW or CAP_NET_ADMIN it is refused, with
# the capability and the fix named, unless its policy accepts the risk; status
# then says the vectors are open and why.
test_rootless_net_caps_need_consent() {
	rl_setup || return
	rctr rlraw --annotation cgfence.policy=lo --cap-add NET_RAW -- "echo STARTED"
	[ "$RC" -ne 0 ] || fail "CAP_NET_RAW without a boundary: the container ran"
	assert_no_match STARTED "$OUT" "CAP_NET_RAW without a boundary: the container's command"
	assert_match "the workload holds CAP_NET_RAW and no boundary program" "$OUT" "the reason"
	assert_match "podman --cap-drop NET_RAW\) or add 'accept-risk net_raw' to policy 'lo'" \
		"$OUT" "the fix"
	rctr rladm --annotation cgfence.policy=lo --cap-add NET_ADMIN -- "echo STARTED"
	[ "$RC" -ne 0 ] || fail "CAP_NET_ADMIN without a boundary: the container ran"
	assert_match "holds CAP_NET_ADMIN and no boundary program" "$OUT" "CAP_NET_ADMIN: the reason"
	assert_eq 0 "$(n_fences)" "fences left by refused containers"
	# the policy's consent
	rlpm run -d --name "$TAG-rlok" "${RUN_OPTS[@]}" --network none --cap-add NET_RAW \
		--annotation cgfence.policy=lorisk --rootfs "$ROOTFS" /bin/sh -c 'sleep 60' \
		>/dev/null 2>"$WORK/rlok.err" || { fail "with accept-risk: $(cat "$WORK/rlok.err")"; return; }
	local pid
	pid=$(rlpm inspect -f '{{.State.Pid}}' "$TAG-rlok")
	echo "$CG2/cgfence/pid-$pid" >>"$WORK/made.cgroups"
	OUT=$(ctl status)
	assert_match "open: AF_PACKET \(CAP_NET_RAW\): no boundary program and risk accepted by policy" \
		"$OUT" "status: the open vector and why"
	assert_match "closed: tunnels, TUN forwarding, nft netdev rewrites \(CAP_NET_ADMIN\): the workload does not hold CAP_NET_ADMIN" \
		"$OUT" "status: the closed vector and why"
}

# Root in a rootless container (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW in
# its user namespace): it cannot make a sub-cgroup in, or leave, the cgroup
# the daemon made, its ip commands change nothing, and as the user on the
# host it cannot have the fence removed.
test_rootless_cannot_unfence() {
	rl_setup || return
	rctr rlroot --annotation cgfence.policy=lorisk --cap-add SYS_ADMIN,NET_ADMIN,NET_RAW \
		--cgroupns=private -- "
		$RL_SERVERS
		mount -t cgroup2 none /mnt/cg || echo mount-failed
		own=\$(sed -n 's/^0:://p' /proc/self/cgroup); echo \"own=\$own\"
		mkdir /mnt/cg\$own/sub 2>&1; echo \"mkdir-rc=\$?\"
		echo \$\$ >/mnt/cg/cgroup.procs; echo \"to-root-rc=\$?\"
		ip route flush all; ip link set lo down; ip link set lo up; echo \"ip-rc=\$?\"
		grep '^0::' /proc/self/cgroup
		$RL_TRY_DENIED
		ping -c 1 -W 1 127.0.0.1 2>&1; echo \"ping-rc=\$?\"
		$RL_TRY_ALLOWED"
	assert_eq 0 "$RC" "rootless podman run: exit status ($OUT)"
	assert_no_match 'mount-failed' "$OUT" "mount cgroup2 in the container"
	assert_match 'own=/cgfence/pid-[0-9]+' "$OUT" "the container's cgroup"
	assert_match 'mkdir-rc=1' "$OUT" "mkdir of a sub-cgroup"
	assert_match 'to-root-rc=[1-9]' "$OUT" "a move to the root cgroup"
	assert_match 'ip-rc=0' "$OUT" "ip commands (CAP_NET_ADMIN in its namespace)"
	assert_match "can't connect to remote host \(127\.0\.0\.1\): $DENY_MSG" "$OUT" "denied port"
	assert_match "ping: sendto: $DENY_MSG" "$OUT" "raw ICMP (CAP_NET_RAW)"
	assert_match 'allowed-rc=0' "$OUT" "allowed port"
	sed -n 's/^own=//p' <<<"$OUT" | sed "s|^|$CG2|" >>"$WORK/made.cgroups"

	# as the user on the host: no detach, no attach of a process not its own
	rlpm run -d --name "$TAG-rlhold" "${RUN_OPTS[@]}" --network none \
		--annotation cgfence.policy=lo --rootfs "$ROOTFS" /bin/sh -c 'sleep 60' >/dev/null 2>&1 ||
		{ fail "rootless podman run -d"; return; }
	local pid cg out
	pid=$(rlpm inspect -f '{{.State.Pid}}' "$TAG-rlhold")
	cg=$CG2/cgfence/pid-$pid
	echo "$cg" >>"$WORK/made.cgroups"
	out=$(as_user "$CGFENCE" detach --cgroup "$cg" --socket "$SOCK" 2>&1)
	assert_match 'only root may remove a fence' "$out" "detach as the user"
	[ -n "$(fence_of "$(rlpm inspect -f '{{.Id}}' "$TAG-rlhold")")" ] ||
		fail "the fence went after the user's detach"
	sleep 60 &
	local spid=$!
	echo "$spid" >>"$WORK/pids"
	out=$(as_user "$CGFENCE" attach --policy lo --pid "$spid" --socket "$SOCK" 2>&1)
	assert_match "process $spid belongs to uid 0, not to uid $RL_UID" "$out" \
		"attach of another uid's process"
}

run_tests "$@"
