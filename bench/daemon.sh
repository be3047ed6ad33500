#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The daemon's costs (root): a policy of BENCH_NAMES [10000] domain rules,
# each name answering BENCH_ADDRS [8] addresses from a dnsmasq on loopback:
#   - time from `cgfence attach --policy` to every address in the fence's map
#     (the first resolution of all names and the sync),
#   - time for every name, all answering new addresses, to be resolved and
#     synced into the map by a starting daemon (which resolves all names),
#   - the daemon's resident memory with all of it loaded,
#   - control-socket requests per second (a cheap request, `release`, sent
#     and answered one at a time over one connection, for BENCH_REQ_SECS [3] s).
# Targets (issue: cgfenced): sync of 10,000 names under 2 s, under 50 MiB resident.
# Prints a markdown section on stdout.  Addresses in the map are never contacted.

set -u -o pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAMES=${BENCH_NAMES:-10000}
ADDRS=${BENCH_ADDRS:-8}
REQ_SECS=${BENCH_REQ_SECS:-3}
W=$(mktemp -d /tmp/cgfence-dbench.XXXXXX)
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
CG=$CG2/cgfdbench$$
PINS=/sys/fs/bpf/cgfdbench$$
DNS_ADDR=127.0.66.1
DNS_PORT=$((20000 + $$ % 20000))
DAEMON=
DNSMASQ=

cleanup() {
	[ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
	[ -n "$DNSMASQ" ] && kill "$DNSMASQ" 2>/dev/null && wait "$DNSMASQ" 2>/dev/null
	[ -d "$CG" ] && "$TOP/build/cgfence" detach --bpffs "$PINS" --cgroup "$CG" >/dev/null 2>&1
	rm -rf "$PINS" 2>/dev/null
	rmdir "$CG" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
[ -n "${BENCH_KEEP_LOG:-}" ] && trap 'cp "$W/daemon.log" "$BENCH_KEEP_LOG"; cleanup' EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# Names n00000.bench.test ... with ADDRS addresses each from 100.64.0.0/10,
# written as a hosts file for dnsmasq and as a policy.
mkdir -p "$W/pol"
python3 - "$NAMES" "$ADDRS" "$W/hosts" "$W/pol/bench.policy" <<'PY'
import sys
names, addrs = int(sys.argv[1]), int(sys.argv[2])
with open(sys.argv[3], "w") as hosts, open(sys.argv[4], "w") as pol:
    k = 0
    for i in range(names):
        name = "n%05d.bench.test" % i
        pol.write("%s:443/tcp\n" % name)
        for _ in range(addrs):
            a = 0x64400000 + k  # 100.64.0.0/10
            k += 1
            hosts.write("%d.%d.%d.%d %s\n" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, name))
PY

dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
	--listen-address=$DNS_ADDR --port=$DNS_PORT --addn-hosts="$W/hosts" --local-ttl=3600 \
	--local=/bench.test/ --cache-size=0 >"$W/dnsmasq.log" 2>&1 &
DNSMASQ=$!
mkdir -p "$CG"
"$TOP/build/cgfenced" --foreground --policy-dir "$W/pol" --socket "$W/sock" --bpffs "$PINS" \
	--resolver $DNS_ADDR:$DNS_PORT --max-addrs "$ADDRS" >"$W/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 100); do [ -S "$W/sock" ] && break; sleep 0.1; done

entries() {
	"$TOP/build/cgfence" status --socket "$W/sock" --json 2>/dev/null |
		jq '[.fences[] | select(.policy == "bench") | .ipv4_entries] | add // 0'
}
wait_entries() { # wait_entries N SECONDS: until the fence holds N entries
	local end=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$end" ]; do
		[ "$(entries)" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

want=$((NAMES * ADDRS))
# The daemon resolves every name once at start; wait for that, then attach:
# the attach writes what is known.  Then the first sync is timed from a
# reload with every name due (a fresh policy object resolves all of them).
for _ in $(seq 1 600); do
	grep -q '"msg":"ready' "$W/daemon.log" 2>/dev/null || grep -q 'ready:' "$W/daemon.log" && break
	sleep 0.1
done
t0=$(now_ms)
"$TOP/build/cgfence" attach --socket "$W/sock" --policy bench --cgroup "$CG" >/dev/null ||
	{ echo "bench: attach failed" >&2; exit 1; }
wait_entries "$want" 120 || echo "bench: only $(entries) of $want entries after 120 s" >&2
first_ms=$(($(now_ms) - t0))

# Every name at once: move every name to new addresses, restart the daemon
# (it resolves every name at start, and its adopted fence keeps the old
# addresses until they expire), and measure until the map holds both sets.
python3 - "$W/hosts" <<'PY'
import sys
p = sys.argv[1]
out = []
for l in open(p).read().splitlines():
    a, n = l.split()
    o = [int(x) for x in a.split(".")]
    o[1] |= 0x80  # 100.64/10 -> 100.192/10: new addresses for every name
    out.append("%d.%d.%d.%d %s" % (o[0], o[1], o[2], o[3], n))
open(p, "w").write("\n".join(out) + "\n")
PY
kill -HUP "$DNSMASQ"
sleep 0.3
kill "$DAEMON"
wait "$DAEMON" 2>/dev/null
t0=$(now_ms)
${BENCH_DAEMON_WRAP:-} "$TOP/build/cgfenced" --foreground --policy-dir "$W/pol" --socket "$W/sock" --bpffs "$PINS" \
	--resolver $DNS_ADDR:$DNS_PORT --max-addrs "$ADDRS" ${BENCH_DAEMON_OPTS:-} >>"$W/daemon.log" 2>&1 &
DAEMON=$!
refresh_ok=1
wait_entries $((want * 2)) 120 || refresh_ok=0
refresh_ms=$(($(now_ms) - t0))
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON/status")
hwm_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON/status")

# Control-socket requests per second, one at a time over one connection.
reqs=$(python3 - "$W/sock" "$REQ_SECS" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
n, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s.sendall(b'{"op":"release"}\n')
    if not f.readline():
        break
    n += 1
print("%.0f" % (n / float(sys.argv[2])))
PY
)

verdict() { [ "$1" = 1 ] && echo met || echo "**missed**"; }
cat <<EOF
## The daemon (cgfenced)

$NAMES names, $ADDRS addresses each, answered by dnsmasq on loopback (cache off);
one fenced cgroup carries the policy. Commands: \`bench/daemon.sh\` (BENCH_NAMES,
BENCH_ADDRS, BENCH_REQ_SECS).

| measure | value | target |
|---|---:|---|
| attach, then all $((want)) addresses in the map | $first_ms ms | |
| every name answering new addresses: daemon start to all $((want)) new addresses in the map (resolve + sync) | $refresh_ms ms$([ $refresh_ok = 1 ] || echo " (incomplete)") | under 2,000 ms: $(verdict $([ $refresh_ok = 1 ] && [ "$refresh_ms" -lt 2000 ] && echo 1 || echo 0)) |
| daemon resident memory, now / peak | $((rss_kib / 1024)) / $((hwm_kib / 1024)) MiB | under 50 MiB: $(verdict $([ $((rss_kib / 1024)) -lt 50 ] && echo 1 || echo 0)) |
| control-socket requests per second (\`release\`, one at a time) | $reqs | |

EOF
