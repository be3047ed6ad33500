#!/bin/bash
# make install into a staging root: every file where the docs say, paths in the
# systemd unit and the OCI hook descriptions rewritten for PREFIX, an edited
# config left alone by a second install, and the installed example policy
# loaded by the installed daemon.
. "$(dirname "$0")/../lib.sh"

DEST=$WORK/root
PREFIX=/opt/cgf

suite_cleanup() {
	[ -f "$WORK/daemon.pid" ] && kill "$(cat "$WORK/daemon.pid")" 2>/dev/null
	rm -f "$WORK/daemon.pid"
}

install_staged() {
	make -s -C "$TOP" install DESTDIR="$DEST" PREFIX="$PREFIX" >"$WORK/install.log" 2>&1
}

test_install_layout() {
	install_staged || { fail "make install: $(tail -3 "$WORK/install.log")"; return; }
	local f
	for f in $PREFIX/sbin/cgfence $PREFIX/sbin/cgfenced $PREFIX/libexec/cgfence/cgfence-hook \
		/etc/systemd/system/cgfenced.service /etc/cgfence/cgfenced.conf \
		/etc/cgfence/policy.d/devcontainer.policy \
		/usr/share/containers/oci/hooks.d/cgfence.json \
		/usr/share/containers/oci/hooks.d/cgfence-poststop.json \
		$PREFIX/share/doc/cgfence/README.md; do
		[ -f "$DEST$f" ] || fail "not installed: $f"
	done
	[ -x "$DEST$PREFIX/sbin/cgfence" ] || fail "cgfence not executable"
	assert_match "ExecStart=$PREFIX/sbin/cgfenced --foreground" \
		"$(cat "$DEST/etc/systemd/system/cgfenced.service")" "unit names the installed daemon"
	local hook
	for hook in cgfence cgfence-poststop; do
		jq -e --arg p "$PREFIX/libexec/cgfence/cgfence-hook" '.version == "1.0.0" and .hook.path == $p' \
			"$DEST/usr/share/containers/oci/hooks.d/$hook.json" >/dev/null ||
			fail "$hook.json does not name $PREFIX/libexec/cgfence/cgfence-hook"
	done
	assert_eq '["createRuntime"]' "$(jq -c .stages "$DEST/usr/share/containers/oci/hooks.d/cgfence.json")" \
		"create hook stage"
	assert_eq '["poststop"]' "$(jq -c .stages "$DEST/usr/share/containers/oci/hooks.d/cgfence-poststop.json")" \
		"poststop hook stage"
}

test_reinstall_keeps_edited_config() {
	install_staged || { fail "make install"; return; }
	echo "grace = 7" >>"$DEST/etc/cgfence/cgfenced.conf"
	echo "127.0.0.9:1" >>"$DEST/etc/cgfence/policy.d/devcontainer.policy"
	install_staged || { fail "second make install"; return; }
	assert_match "grace = 7" "$(cat "$DEST/etc/cgfence/cgfenced.conf")" "edited config kept"
	assert_match "127.0.0.9:1" "$(cat "$DEST/etc/cgfence/policy.d/devcontainer.policy")" \
		"edited policy kept"
}

# The example config and policy are what the installed daemon reads.
test_installed_daemon_loads_example() {
	need_root || return
	install_staged || { fail "make install"; return; }
	local conf=$WORK/test.conf
	# the installed config, with this test's own socket, pins and a resolver
	# that does not answer (names then fail to resolve, and are retried)
	{
		cat "$DEST/etc/cgfence/cgfenced.conf"
		echo "policy-dir = $DEST/etc/cgfence/policy.d"
		echo "socket = $WORK/cgfenced.sock"
		echo "bpffs = /sys/fs/bpf/$TAG"
		echo "resolver = 127.0.0.1:1"
		# a comment longer than any line buffer: its tail is no option (the
		# daemon would listen elsewhere and the status below would fail)
		printf '# %s socket = %s\n' "$(printf '%.0sx' $(seq 1 1100))" "$WORK/wrong.sock"
	} >"$conf"
	"$DEST$PREFIX/sbin/cgfenced" --config "$conf" --foreground >"$WORK/daemon.log" 2>&1 &
	echo $! >"$WORK/daemon.pid"
	local i
	for i in $(seq 1 50); do
		grep -q "ready:" "$WORK/daemon.log" && break
		sleep 0.1
	done
	assert_match "1 policies loaded" "$(cat "$WORK/daemon.log")" "example policy loaded"
	assert_no_match "rejected" "$(cat "$WORK/daemon.log")" "example policy rejected"
	local out
	out=$("$DEST$PREFIX/sbin/cgfence" status --socket "$WORK/cgfenced.sock" 2>&1)
	assert_match "policies: devcontainer" "$out" "status through the installed daemon"
	kill "$(cat "$WORK/daemon.pid")"
	rm -f "$WORK/daemon.pid"
	rmdir "/sys/fs/bpf/$TAG" 2>/dev/null
}

run_tests "$@"
