#!/bin/bash
# make demo: a fenced command reaches the server its allowlist names and is
# refused by another one, with the deny line cgfence prints.  Everything runs
# between two network namespaces this script creates (198.18.0.0/15).
set -u
. "$(dirname "$0")/lib.sh"

suite_cleanup() {
	kill_listeners
	net_down
}

if [ "$(id -u)" != 0 ]; then
	echo "make demo needs root (it loads BPF programs and creates namespaces)" >&2
	exit 1
fi
net_up || exit 1
for host in 198.18.0.2 198.18.0.3; do
	mkdir -p "$WORK/$host"
	echo "hello from $host" >"$WORK/$host/index.html"
	in_server timeout 60 python3 -m http.server 80 --bind "$host" --directory "$WORK/$host" \
		>/dev/null 2>&1 &
	echo $! >>"$WORK/pids"
done
for i in $(seq 1 50); do
	in_server python3 -c 'import socket,sys
for h in ("198.18.0.2","198.18.0.3"): socket.create_connection((h,80),1).close()' 2>/dev/null && break
	sleep 0.1
done

cat <<TXT

Two web servers in a test network: 198.18.0.2 and 198.18.0.3.
The fenced command may reach only 198.18.0.2, port 80, over TCP:

  cgfence run --user nobody --allow 198.18.0.2:80/tcp -- sh -c 'curl http://198.18.0.2/; curl http://198.18.0.3/'

TXT
in_client "$CGFENCE" run --user nobody --allow 198.18.0.2:80/tcp -- sh -c '
	echo "\$ curl http://198.18.0.2/"; curl -sS -m 3 http://198.18.0.2/
	echo "\$ curl http://198.18.0.3/"; out=$(curl -sS -m 3 http://198.18.0.3/ 2>&1); rc=$?
	sleep 0.3; echo "$out"; exit $rc'
status=$?
echo
echo "cgfence run exited with $status, curl's own status (7: could not connect)."
echo "The same command without the fence reaches both:"
in_client sh -c 'curl -sS -m 3 http://198.18.0.2/; curl -sS -m 3 http://198.18.0.3/'
