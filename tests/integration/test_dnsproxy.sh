#!/bin/bash
# DNS proxy mode, as root: policies with 'dns proxy' attached through cgfenced.
# Every fenced process's DNS (UDP and TCP to port 53, whatever the address) is
# steered by the fence's BPF hooks to the daemon's proxy, which listens in the
# client namespace, answers only the policy's names and opens the fence for
# exactly the addresses it answered, before it answers.
#
# The upstream is a small authoritative server of this suite (python3, in the
# helper below) that logs every query it gets to $WORK/queries.log: one
# instance on 127.0.0.1 of the host namespace (the daemon's upstream) and one
# on 198.18.0.8 and .9 and [2001:db8::9] of the server namespace, port 53
# (what a fenced process could try to reach directly).  Both log to the same
# file, so "no line for evil.test" proves that no query reached either.
# svc.test answers a different address every query (TTL 0), *.wild.test
# answers 198.18.0.6, everything else under .test is NXDOMAIN.
#
#   tests/integration/test_dnsproxy.sh [test_name...]

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PIN_ROOT=/sys/fs/bpf/$TAG
SOCK=$WORK/cgfenced.sock
PY=/usr/bin/python3
DX=$WORK/dnsx.py
QLOG=$WORK/queries.log
UP_PORT=
chmod 0711 "$WORK"

cat >"$DX" <<'PYEOF'
"""test_dnsproxy.sh's DNS helper.  Every mode is bounded in time.

serve LOG READY ADDR:PORT...
    authoritative server for .test on UDP and TCP at each ADDR:PORT (port 0:
    one the kernel picks); writes the first port to READY once listening;
    logs "PROTO NAME TYPE" per query (or "MALFORMED PROTO LEN") to LOG.
    Exits after 600 s.
q SERVER NAME TYPE [tcp] [connect PORT]
    one query; prints "rcode=N from=ADDR:PORT answers=A,B"; with connect,
    then a TCP connection to the first address, "connect=ok|ERRNO"
rr SERVER NAME TYPE N PORT
    N times: query, then connect to the answer at once; prints
    "queries=N distinct=N connected=N failed=N" and each failure
flood DOMAIN N SERVER...
    N queries for random names under DOMAIN, cycling over the servers and
    over UDP and TCP; prints "sent=N refused=N other=N noanswer=N"
junk SERVER
    malformed messages over UDP and TCP; prints "sent=N"
"""
import errno
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time


def enc_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(msg, off):
    labels, jumped, end, hops = [], False, off, 0
    while True:
        if off >= len(msg) or hops > 64:
            raise ValueError("bad name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped, hops = True, hops + 1
            continue
        if n == 0:
            if not jumped:
                end = off + 1
            return ".".join(labels).lower(), end
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n


TYPES = {1: "A", 28: "AAAA", 16: "TXT", 10: "NULL", 5: "CNAME", 65: "HTTPS", 15: "MX"}


class Zone:
    def __init__(self, log):
        self.log = open(log, "a", buffering=1)
        self.lock = threading.Lock()
        self.n = 0

    def answer(self, q, proto):
        if len(q) < 12:
            self.note("MALFORMED %s %d" % (proto, len(q)))
            return None
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        try:
            name, off = read_name(q, 12)
            qtype, qclass = struct.unpack("!HH", q[off:off + 4])
        except (ValueError, struct.error, UnicodeError):
            self.note("MALFORMED %s %d" % (proto, len(q)))
            return struct.pack("!HHHHHH", qid, 0x8001, 0, 0, 0, 0)
        self.note("%s %s %s" % (proto, name, TYPES.get(qtype, qtype)))
        question = q[12:off + 4]
        rrs, rcode = [], 0
        with self.lock:
            self.n += 1
            k = self.n
        if name == "svc.test":
            if qtype == 1:
                rrs.append((1, 0, socket.inet_pton(socket.AF_INET, "198.18.0.%d" % (3 + k % 5))))
            elif qtype == 28:
                rrs.append((28, 0, socket.inet_pton(socket.AF_INET6, "2001:db8::%d" % (3 + k % 5))))
            elif qtype == 16:
                rrs.append((16, 0, b"\x05hello"))
            elif qtype == 10:
                rrs.append((10, 0, b"data"))
        elif name.endswith(".wild.test"):
            if qtype == 1:
                rrs.append((1, 30, socket.inet_pton(socket.AF_INET, "198.18.0.6")))
        elif name == "wild.test":
            if qtype == 1:
                rrs.append((1, 30, socket.inet_pton(socket.AF_INET, "198.18.0.7")))
        else:
            rcode = 3
        out = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(rrs), 0, 0)
        out += question
        for t, ttl, data in rrs:
            out += b"\xc0\x0c" + struct.pack("!HHIH", t, 1, ttl, len(data)) + data
        return out

    def note(self, line):
        with self.lock:
            self.log.write(line + "\n")


def serve(log, ready, addrs):
    zone = Zone(log)

    class U(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            r = zone.answer(data, "udp")
            if r:
                sock.sendto(r, self.client_address)

    class T(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(5)
            try:
                while True:
                    hdr = self.request.recv(2, socket.MSG_WAITALL)
                    if len(hdr) < 2:
                        return
                    (n,) = struct.unpack("!H", hdr)
                    data = self.request.recv(n, socket.MSG_WAITALL)
                    r = zone.answer(data, "tcp")
                    if not r:
                        return
                    self.request.sendall(struct.pack("!H", len(r)) + r)
            except OSError:
                return

    servers, first = [], None
    for a in addrs:
        host, port = a.rsplit(":", 1)
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET

        class US(socketserver.ThreadingUDPServer):
            address_family = fam
            allow_reuse_address = True
            daemon_threads = True

        class TS(socketserver.ThreadingTCPServer):
            address_family = fam
            allow_reuse_address = True
            daemon_threads = True

        u = US((host, int(port)), U)
        p = u.server_address[1]
        t = TS((host, p), T)
        first = first or p
        servers += [u, t]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % first)
    os.rename(ready + ".tmp", ready)
    time.sleep(600)


def target(t, port=53):
    if t.startswith("["):
        host, _, p = t[1:].partition("]")
        p = p.lstrip(":")
    elif t.count(":") == 1:
        host, p = t.split(":")
    else:
        host, p = t, ""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, host, int(p) if p else port


def build(name, qtype):
    qid = random.randrange(65536)
    return qid, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + enc_name(name) + struct.pack("!HH", qtype, 1)


QT = {"A": 1, "AAAA": 28, "TXT": 16, "NULL": 10, "MX": 15}


def query(server, name, qtype, tcp=False, timeout=3.0):
    """(rcode, answers, from) or (None, [], error)."""
    fam, host, port = target(server)
    qid, msg = build(name, QT.get(qtype, qtype) if isinstance(qtype, str) else qtype)
    s = socket.socket(fam, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        if tcp:
            s.connect((host, port))
            s.sendall(struct.pack("!H", len(msg)) + msg)
            hdr = s.recv(2, socket.MSG_WAITALL)
            (n,) = struct.unpack("!H", hdr)
            r = s.recv(n, socket.MSG_WAITALL)
            frm = s.getpeername()
        else:
            s.sendto(msg, (host, port))
            while True:
                r, frm = s.recvfrom(65535)
                if len(r) >= 2 and struct.unpack("!H", r[:2])[0] == qid:
                    break
    except (OSError, struct.error) as e:
        return None, [], getattr(e, "errno", None) and errno.errorcode.get(e.errno) or "timeout"
    finally:
        s.close()
    rcode = r[3] & 0x0F
    an = struct.unpack("!H", r[6:8])[0]
    _, off = read_name(r, 12)
    off += 4
    answers = []
    for _ in range(an):
        _, off = read_name(r, off)
        t, _, _, ln = struct.unpack("!HHIH", r[off:off + 10])
        off += 10
        if t == 1:
            answers.append(socket.inet_ntop(socket.AF_INET, r[off:off + 4]))
        elif t == 28:
            answers.append(socket.inet_ntop(socket.AF_INET6, r[off:off + 16]))
        else:
            answers.append("type%d" % t)
        off += ln
    h = frm[0]
    return rcode, answers, ("[%s]:%d" % (h, frm[1]) if ":" in h else "%s:%d" % (h, frm[1]))


def connect(addr, port, timeout=2.0):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        return "ok"
    except socket.timeout:
        return "ETIMEDOUT"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "serve":
        serve(args[0], args[1], args[2:])
    elif mode == "q":
        tcp = "tcp" in args[3:]
        rcode, ans, frm = query(args[0], args[1], args[2], tcp)
        line = "rcode=%s from=%s answers=%s" % (rcode, frm, ",".join(ans))
        if "connect" in args[3:]:
            port = int(args[args.index("connect") + 1])
            line += " connect=%s" % (connect(ans[0], port) if ans else "none")
        print(line)
    elif mode == "rr":
        n, port = int(args[3]), int(args[4])
        seen, ok, bad = set(), 0, []
        for i in range(n):
            rcode, ans, frm = query(args[0], args[1], args[2])
            if rcode != 0 or not ans:
                bad.append("query %d: rcode=%s %s" % (i, rcode, frm))
                continue
            seen.add(ans[0])
            c = connect(ans[0], port)
            if c == "ok":
                ok += 1
            else:
                bad.append("query %d: %s -> %s" % (i, ans[0], c))
        print("queries=%d distinct=%d connected=%d failed=%d" % (n, len(seen), ok, len(bad)))
        for b in bad:
            print(b)
    elif mode == "flood":
        dom, n, servers = args[0], int(args[1]), args[2:]
        refused = other = noanswer = 0
        for i in range(n):
            name = "%x.%s" % (random.getrandbits(48), dom)
            rcode, _, frm = query(servers[i % len(servers)], name, "A", tcp=(i // len(servers)) % 2 == 1,
                                  timeout=2.0)
            if rcode is None:
                noanswer += 1
            elif rcode == 5:
                refused += 1
            else:
                other += 1
        print("sent=%d refused=%d other=%d noanswer=%d" % (n, refused, other, noanswer))
    elif mode == "junk":
        fam, host, port = target(args[0])
        msgs = [b"", b"\x00", b"\x12\x34\x01\x00\x00\x01", os.urandom(11),
                # a question whose name runs past the end
                struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x3fabc",
                # a compression loop
                struct.pack("!HHHHHH", 2, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",
                # two questions, one of them for an allowed name
                struct.pack("!HHHHHH", 3, 0x0100, 2, 0, 0, 0) + enc_name("svc.test") +
                b"\x00\x01\x00\x01" + enc_name("evil.test") + b"\x00\x01\x00\x01",
                # a response (QR set) for an allowed name
                struct.pack("!HHHHHH", 4, 0x8100, 1, 0, 0, 0) + enc_name("svc.test") + b"\x00\x01\x00\x01",
                # an answer count that lies
                struct.pack("!HHHHHH", 5, 0x0100, 1, 9, 0, 0) + enc_name("svc.test") + b"\x00\x01\x00\x01",
                # a label longer than 63
                struct.pack("!HHHHHH", 6, 0x0100, 1, 0, 0, 0) + b"\x50" + b"a" * 80 + b"\x00\x00\x01\x00\x01",
                ] + [os.urandom(random.randrange(12, 600)) for _ in range(40)]
        sent = 0
        for m in msgs:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(m, (host, port))
                sent += 1
                s.recvfrom(65535)
            except OSError:
                pass
            s.close()
            t = socket.socket(fam, socket.SOCK_STREAM)
            t.settimeout(0.5)
            try:
                t.connect((host, port))
                t.sendall(struct.pack("!H", len(m)) + m if m else b"\xff")
                sent += 1
                t.recv(2)
            except OSError:
                pass
            t.close()
        print("sent=%d" % sent)
    return 0


sys.exit(main())
PYEOF
chmod 0644 "$DX"

# ---- helpers ----------------------------------------------------------------

setup() {
	need "$CGFENCE" "$CGFENCED" "$PROBE" -- nsenter jq setpriv nft "$PY" || return 1
	mkdir -p "$WORK/pol"
	: >"$QLOG"
	net_up || { fail "the test network did not come up"; return 1; }
}

# start_upstreams: the test server in the host namespace (the daemon's
# upstream, port in $UP_PORT) and in the server namespace on port 53.
start_upstreams() {
	rm -f "$WORK/up.ready" "$WORK/srv.ready"
	spawn up "$PY" "$DX" serve "$QLOG" "$WORK/up.ready" 127.0.0.1:0
	spawn srv nsenter --net="/run/netns/$NS_S" -- "$PY" "$DX" serve "$QLOG" \
		"$WORK/srv.ready" 198.18.0.9:53 198.18.0.8:53 '[2001:db8::9]:53'
	wait_for 5 test -e "$WORK/up.ready" && wait_for 5 test -e "$WORK/srv.ready" ||
		{ echo "test DNS servers did not start: $(cat "$WORK/up.out" "$WORK/srv.out")" >&2; return 1; }
	UP_PORT=$(cat "$WORK/up.ready")
}

# start_daemon [ARGS...]: cgfenced (tests/lib.sh: start_cgfenced) with the
# test server in the host namespace as its upstream (30 s to start: slow under
# the sanitizer on a busy machine).
start_daemon() {
	start_cgfenced 30 --resolver "127.0.0.1:$UP_PORT" --min-ttl 2 --max-ttl 60 --grace 1 \
		--log-format json "$@"
}

ctl() { "$CGFENCE" "$@" --socket "$SOCK"; }

# fenced_cg NAME POLICY: a cgroup $TAG-NAME holding a sleeper of the client
# namespace (the proxy listens in its namespace), fenced with POLICY.
fenced_cg() {
	local cg=$CG2/$TAG-$1 out i
	mkdir -p "$cg" || return 1
	"${INCG[@]}" "$cg" sleep 300 >/dev/null 2>&1 </dev/null &
	echo $! >>"$WORK/spawned.pids"
	for i in $(seq 1 50); do
		[ -s "$cg/cgroup.procs" ] && break
		sleep 0.05
	done
	out=$(ctl attach --policy "$2" --cgroup "$cg" 2>&1) ||
		{ fail "attach $2 to $cg: $out"; return 1; }
	echo "$cg"
}

# dx CG ARGS...: the DNS helper inside cgroup CG (client namespace).
dx() {
	local cg=$1
	shift
	"${INCG[@]}" "$cg" timeout 120 "$PY" "$DX" "$@" 2>&1
}

# egress_denied CG: the egress deny counter of the fence of cgroup CG.
egress_denied() {
	ctl status --json | jq --arg c "$1" '.fences[] | select(.cgroup == $c) | .counters.egress.denied'
}

# queries REGEX: how many lines of the query log match.
queries() { grep -Ec -- "$1" "$QLOG"; }

suite_cleanup() {
	local d
	stop_daemons kill -KILL
	kill_spawned
	rm -f "$WORK/spawned.pids"
	kill_listeners
	net_down
	if [ -n "$CG2" ]; then
		for d in "$CG2/$TAG"-* "$CG2"/cgfence/run-*; do
			[ -d "$d" ] || continue
			case $d in "$CG2"/cgfence/run-*) grep -qs "$TAG" "$WORK/run.cg" || continue ;; esac
			remove_cgroup_tree "$d"
		done
	fi
	[ -d "$PIN_ROOT" ] && rm -rf "${PIN_ROOT:?}"
	rm -rf "$WORK/pol" "$WORK/daemon.log" "$SOCK" "$SOCK.lock" "$WORK"/*.out "$WORK"/*.count \
		"$WORK"/*.ready "$QLOG"
}

# the standard setup: servers, a proxy-mode policy, the daemon
std_setup() {
	setup || return 1
	start_upstreams || { fail "upstreams"; return 1; }
	policy px 'dns proxy' 'svc.test:80/tcp' '*.wild.test:80/tcp' '198.18.0.2:7/udp'
	start_daemon || { fail "daemon"; return 1; }
}

# ---- tests ------------------------------------------------------------------

# An allowed name resolves inside the fence through whatever resolver address
# the client aims at; the reply comes from that address; the answered
# address is open at once, on the first try, although every query answers
# another one; other addresses and ports stay closed.
test_allowed_name_round_robin() {
	std_setup || return
	local cg out i
	for i in 3 4 5 6 7; do
		listen_tcp "$NS_S" 198.18.0.$i 80 w$i && listen_tcp "$NS_S" 2001:db8::$i 80 v$i || return
	done
	cg=$(fenced_cg rr px) || return
	out=$(dx "$cg" q 198.18.0.9 svc.test A)
	assert_match '^rcode=0 from=198\.18\.0\.9:53 answers=198\.18\.0\.[3-7]$' "$out" "A via 198.18.0.9"
	out=$(dx "$cg" q 192.0.2.1 svc.test A tcp)
	assert_match '^rcode=0 from=192\.0\.2\.1:53 answers=198\.18\.0\.[3-7]$' "$out" "A over TCP via 192.0.2.1"
	out=$(dx "$cg" q '[2001:db8::53]' svc.test AAAA)
	assert_match '^rcode=0 from=\[2001:db8::53\]:53 answers=2001:db8::[3-7]$' "$out" "AAAA via [2001:db8::53]"
	out=$(dx "$cg" rr 198.18.0.9 svc.test A 20 80)
	assert_match '^queries=20 distinct=5 connected=20 failed=0' "$out" "query then connect, 20 times"
	out=$(dx "$cg" rr '[2001:db8::9]' svc.test AAAA 10 80)
	assert_match '^queries=10 distinct=5 connected=10 failed=0' "$out" "IPv6: query then connect, 10 times"
	# the proxy asked upstream every time (TTL 0: nothing cached)
	[ "$(queries '^udp svc\.test A$')" -ge 22 ] || fail "upstream saw $(queries '^udp svc\.test A$') A queries for svc.test"
	# only the answered port; a port-53 connect elsewhere never reached the server namespace
	out=$("${INCG[@]}" "$cg" "$PROBE" tcp 198.18.0.3 81 --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "198.18.0.3:81 (port not in the rule)"
	out=$(ctl status --json | jq -c '.fences[] | select(.dns == "proxy") | .dns_proxy')
	assert_match '"listening":true' "$out" "status: proxy listening"
	assert_match '"answered":[1-9]' "$out" "status: answered counter"
	ctl status | grep -q 'dns proxy on 127.0.0.1:' || fail "status text lacks the proxy line: $(ctl status)"
}

# A wildcard rule answers and opens names strictly under its domain, not the
# domain itself nor anything above.
test_wildcard() {
	std_setup || return
	local cg out
	listen_tcp "$NS_S" 198.18.0.6 80 w6 && listen_tcp "$NS_S" 198.18.0.7 80 w7 || return
	cg=$(fenced_cg wild px) || return
	out=$(dx "$cg" q 198.18.0.9 a.b.wild.test A connect 80)
	assert_eq "rcode=0 from=198.18.0.9:53 answers=198.18.0.6 connect=ok" "$out" "a.b.wild.test"
	out=$(dx "$cg" q 198.18.0.9 wild.test A)
	assert_match '^rcode=5 ' "$out" "wild.test itself"
	out=$(dx "$cg" q 198.18.0.9 test A)
	assert_match '^rcode=5 ' "$out" "test"
	out=$("${INCG[@]}" "$cg" "$PROBE" tcp 198.18.0.7 80 --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "198.18.0.7 (wild.test's address, never answered)"
	assert_eq 0 "$(queries ' wild\.test A$')" "upstream queries for wild.test"
	assert_eq 0 "$(queries ' test A$')" "upstream queries for test"
	assert_eq 0 "$(count w7 connections)" "connections that reached 198.18.0.7"
}

# 1,000 queries for random names under a denied domain, to the test server
# directly, to another address, to loopback, IPv4 and IPv6, UDP and TCP:
# every one REFUSED, none reaches an upstream.
test_denied_names_never_leave() {
	std_setup || return
	local cg out
	cg=$(fenced_cg flood px) || return
	out=$(dx "$cg" flood evil.test 1000 198.18.0.9 198.18.0.8 198.18.44.5 127.0.0.1 \
		'[2001:db8::9]' '[::1]' 192.0.2.53 '[2001:db8:ff::1]' '[::ffff:198.18.0.9]')
	assert_eq "sent=1000 refused=1000 other=0 noanswer=0" "$out" "1000 denied queries"
	sleep 0.5
	assert_eq 0 "$(queries 'evil\.test')" "queries for evil.test that reached a server"
	out=$(ctl status --json | jq '.fences[] | select(.dns == "proxy") | .dns_proxy.refused')
	[ "${out:-0}" -ge 1000 ] || fail "status: refused=$out, wanted >= 1000"
	grep -q 'dns refused: .*evil\.test' "$WORK/daemon.log" || fail "no refused name in the log"
	# the log is rate-limited: far fewer lines than queries
	[ "$(grep -c 'dns refused' "$WORK/daemon.log")" -lt 500 ] ||
		fail "refused names not rate-limited: $(grep -c 'dns refused' "$WORK/daemon.log") lines"
}

# Query types beyond A, AAAA, CNAME, HTTPS and SVCB are refused for an
# allowed name, unless the policy allows them.
test_query_types() {
	std_setup || return
	local cg cg2 out
	cg=$(fenced_cg types px) || return
	out=$(dx "$cg" q 198.18.0.9 svc.test TXT)
	assert_match '^rcode=5 ' "$out" "TXT for svc.test"
	out=$(dx "$cg" q 198.18.0.9 svc.test NULL tcp)
	assert_match '^rcode=5 ' "$out" "NULL for svc.test over TCP"
	assert_eq 0 "$(queries 'svc\.test (TXT|NULL)$')" "TXT/NULL queries upstream"
	policy txt 'dns proxy' 'dns allow-type TXT' 'svc.test:80/tcp'
	ctl reload >/dev/null || { fail "reload"; return; }
	cg2=$(fenced_cg types2 txt) || return
	out=$(dx "$cg2" q 198.18.0.9 svc.test TXT)
	assert_match '^rcode=0 .*answers=type16$' "$out" "TXT with 'dns allow-type TXT'"
	out=$(dx "$cg2" q 198.18.0.9 svc.test NULL)
	assert_match '^rcode=5 ' "$out" "NULL with only TXT allowed"
}

# A process with CAP_NET_ADMIN (and NET_BIND_SERVICE) in the fence's network
# namespace: a DNAT of the steered packets to the server (with route_localnet
# on, so that the kernel itself would deliver them), or its own port-53
# listener, gets no query out; the egress program is what drops the DNAT'd
# packets (its deny counter shows them).
test_net_admin_cannot_bypass() {
	std_setup || return
	local cg out caps before after
	cg=$(fenced_cg admin px) || return
	caps=(setpriv --inh-caps=-all,+net_admin,+net_bind_service
		--ambient-caps=-all,+net_admin,+net_bind_service
		--bounding-set=-all,+net_admin,+net_bind_service --)
	"${INCG[@]}" "$cg" "${caps[@]}" sh -c 'echo 1 >/proc/sys/net/ipv4/conf/all/route_localnet &&
		echo 1 >/proc/sys/net/ipv4/conf/lo/route_localnet' ||
		{ fail "route_localnet as NET_ADMIN failed"; return; }
	# nft in the client namespace: steered DNS (to the proxy's port) DNATed to the server
	"${INCG[@]}" "$cg" "${caps[@]}" nft -f - <<-EOF || { fail "nft as NET_ADMIN failed"; return; }
		table ip $TAG {
			chain out { type nat hook output priority -100; udp dport != 53 dnat to 198.18.0.9:53; tcp dport != 53 dnat to 198.18.0.9:53; }
			chain post { type nat hook postrouting priority 100; ip daddr 198.18.0.9 masquerade; }
		}
	EOF
	before=$(egress_denied "$cg")
	out=$("${INCG[@]}" "$cg" "${caps[@]}" timeout 60 "$PY" "$DX" flood evil.test 40 198.18.0.9 127.0.0.1 2>&1)
	assert_match '^sent=40 ' "$out" "queries with the DNAT in place"
	after=$(egress_denied "$cg")
	[ "${after:-0}" -gt "${before:-0}" ] ||
		fail "egress denied nothing during the DNAT attack ($before -> $after): the attack did not reach it"
	nsenter --net="/run/netns/$NS_C" nft delete table ip "$TAG"
	# its own resolver on 127.0.0.1:53, counting what arrives
	listen_udp "$NS_C" 127.0.0.1 53 own || return
	out=$(dx "$cg" q 127.0.0.1 svc.test A)
	assert_match '^rcode=0 from=127\.0\.0\.1:53 answers=198\.18' "$out" "query to 127.0.0.1:53 with a listener there"
	out=$(dx "$cg" q 127.0.0.1 evil.test A)
	assert_match '^rcode=5 ' "$out" "evil.test to 127.0.0.1:53 with a listener there"
	sleep 0.3
	assert_eq 0 "$(count own datagrams)" "datagrams at the process's own 127.0.0.1:53"
	assert_eq 0 "$(queries 'evil\.test')" "queries for evil.test at the servers"
	# the steering cannot be turned off from inside: bpf() needs more than NET_ADMIN
	out=$("${INCG[@]}" "$cg" "${caps[@]}" bpftool cgroup detach "$cg" connect4 pinned \
		"$PIN_ROOT/$(stat -c %i "$cg")/link_connect4" 2>&1) &&
		fail "bpftool detach as NET_ADMIN succeeded: $out"
	out=$(dx "$cg" q 198.18.0.9 evil.test A)
	assert_match '^rcode=5 ' "$out" "evil.test after a detach attempt"
}

# CAP_NET_ADMIN in the fence's network namespace reroutes 127.0.0.0/8 out of
# its veth (route_localnet on, the local routes gone, a route via the server
# side): steered DNS keeps the proxy's loopback address and port (so the
# proxy's exception and the steered socket's own destination would pass it),
# and a loopback service the policy allows keeps its address too.  A counter
# on the server side, ahead of the martian check, counts what arrives with a
# loopback destination: nothing may, and the egress deny counter shows the
# attempts reached the filter.
test_loopback_never_leaves_by_a_link() {
	std_setup || return
	local cg out caps before after
	policy lo 'dns proxy' 'svc.test:80/tcp' '127.0.0.1:9/udp'
	ctl reload >/dev/null || { fail "reload"; return; }
	cg=$(fenced_cg lo lo) || return
	count_looped || { fail "nft on the server side"; return; }
	caps=(setpriv --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin
		--bounding-set=-all,+net_admin --)
	"${INCG[@]}" "$cg" "${caps[@]}" sh -c "echo 1 >/proc/sys/net/ipv4/conf/all/route_localnet &&
		echo 1 >/proc/sys/net/ipv4/conf/${TAG}a/route_localnet &&
		ip route del local 127.0.0.0/8 dev lo table local &&
		ip route del local 127.0.0.1 dev lo table local &&
		ip route add 127.0.0.0/8 via 198.18.0.2 dev ${TAG}a" ||
		{ fail "rerouting 127.0.0.0/8 as NET_ADMIN failed"; return; }
	assert_match "dev ${TAG}a" "$(ip -n "$NS_C" route get 127.0.0.1 2>&1)" "127.0.0.1 routed out of the veth"
	before=$(egress_denied "$cg")
	# steered DNS: 2 over UDP, 2 over TCP, to an address the steering rewrites
	out=$(dx "$cg" flood evil.test 4 198.18.0.9)
	assert_match '^sent=4 ' "$out" "steered queries while 127/8 goes out of the veth"
	# the allowed loopback service
	out=$("${INCG[@]}" "$cg" "$PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ok = 0
for _ in range(5):
    try:
        s.sendto(b"x", ("127.0.0.1", 9)); ok += 1
    except OSError:
        pass
print("sent=%d" % ok)' 2>&1)
	sleep 0.5
	after=$(egress_denied "$cg")
	assert_eq 0 "$(looped)" "packets with a loopback destination at the server side"
	[ "${after:-0}" -gt "${before:-0}" ] ||
		fail "egress denied nothing ($before -> $after): the rerouted packets did not reach it"
	# and the deny events say why an allowed destination was dropped
	wait_for 5 grep -q 'deny: .*egress.*"127\.0\.0\.1.*"loopback-off-lo' "$WORK/daemon.log" ||
		fail "no egress event with reason loopback-off-lo for 127.0.0.1: $(grep -m3 'deny:' "$WORK/daemon.log")"
}

# Malformed messages from inside: no crash, nothing sent upstream.
test_malformed() {
	std_setup || return
	local cg out before
	cg=$(fenced_cg junk px) || return
	before=$(wc -l <"$QLOG")
	out=$(dx "$cg" junk 198.18.0.9)
	assert_match '^sent=[0-9]+' "$out" "junk sent"
	out=$(dx "$cg" junk '[2001:db8::9]')
	sleep 0.5
	alive "$DPID" || { fail "cgfenced died"; return; }
	assert_eq 0 "$(grep -c MALFORMED "$QLOG")" "malformed messages that reached a server"
	assert_eq 0 "$(queries 'evil\.test')" "evil.test (inside a two-question message) upstream"
	out=$(dx "$cg" q 198.18.0.9 svc.test A)
	assert_match '^rcode=0 ' "$out" "a good query after the junk"
	[ "$(wc -l <"$QLOG")" -le $((before + 1)) ] ||
		fail "the junk caused upstream queries: $(tail -n +$((before + 1)) "$QLOG" | head -5)"
}

# Upstream down: SERVFAIL, and nothing opened.
test_upstream_down() {
	std_setup || return
	local cg out pid
	listen_tcp "$NS_S" 198.18.0.3 80 w3 || return
	cg=$(fenced_cg down px) || return
	pid=$(pgrep -f "$DX serve $QLOG $WORK/up.ready" | head -1)
	[ -n "$pid" ] && kill -STOP "$pid"
	out=$(dx "$cg" q 198.18.0.9 svc.test A)
	[ -n "$pid" ] && kill -CONT "$pid"
	assert_match '^rcode=2 ' "$out" "svc.test with the upstream stopped"
	out=$(ctl status --json | jq -r '.fences[] | select(.dns == "proxy") | .allowlist[].prefix' | tr '\n' ' ')
	assert_eq "198.18.0.2/32 " "$out" "allowlist after the failed query"
	out=$("${INCG[@]}" "$cg" "$PROBE" tcp 198.18.0.3 80 --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "198.18.0.3:80"
}

# Names answered to one fence open nothing for another fence of the policy.
test_scope_per_fence() {
	std_setup || return
	local a b out addr port
	listen_tcp "$NS_S" 198.18.0.6 80 w6 || return
	a=$(fenced_cg sa px) && b=$(fenced_cg sb px) || return
	out=$(dx "$a" q 198.18.0.9 x.wild.test A connect 80)
	assert_eq "rcode=0 from=198.18.0.9:53 answers=198.18.0.6 connect=ok" "$out" "fence A"
	out=$("${INCG[@]}" "$b" "$PROBE" tcp 198.18.0.6 80 --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "fence B, which asked nothing"
	addr=$(ctl status --json | jq -r --arg b "$b" '.fences[] | select(.cgroup == $b) | .allowlist[].prefix' | tr '\n' ' ')
	assert_eq "198.18.0.2/32 " "$addr" "fence B's allowlist"
	# B cannot use A's proxy port directly (nor A itself: only port 53 is steered)
	port=$(ctl status --json | jq -r --arg a "$a" '.fences[] | select(.cgroup == $a) | .dns_proxy.listen4' | cut -d: -f2)
	[ -n "$port" ] || { fail "no listen4 for fence A in status"; return; }
	out=$("${INCG[@]}" "$b" "$PROBE" udp-sendto 127.0.0.1 "$port" --send x --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "fence B to fence A's proxy port"
	out=$("${INCG[@]}" "$b" "$PROBE" tcp 127.0.0.1 "$port" --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "fence B to fence A's proxy port, TCP"
	# a policy sync (reload) keeps what A's proxy learned
	ctl reload >/dev/null
	out=$("${INCG[@]}" "$a" "$PROBE" tcp 198.18.0.6 80 --timeout-ms 1000 2>&1)
	assert_match '^ok' "$out" "fence A after a reload"
}

# An answered address that a prefix rule also covers keeps what the prefix
# allows (the exact entry carries the union), and gains the name's port.
test_union_with_prefix() {
	std_setup || return
	local cg out
	listen_tcp "$NS_S" 198.18.0.6 80 w6 && listen_udp "$NS_S" 198.18.0.6 9 u6 || return
	policy pfx 'dns proxy' '*.wild.test:80/tcp' '198.18.0.0/29:9/udp'
	ctl reload >/dev/null || { fail "reload"; return; }
	cg=$(fenced_cg pfx pfx) || return
	out=$("${INCG[@]}" "$cg" "$PROBE" tcp 198.18.0.6 80 --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "198.18.0.6:80 before any answer"
	out=$(dx "$cg" q 198.18.0.9 u.wild.test A connect 80)
	assert_eq "rcode=0 from=198.18.0.9:53 answers=198.18.0.6 connect=ok" "$out" "u.wild.test"
	out=$("${INCG[@]}" "$cg" "$PROBE" udp-sendto 198.18.0.6 9 --send x --timeout-ms 1000 2>&1)
	assert_match '^ok' "$out" "198.18.0.6:9/udp (the prefix rule) after the answer"
	out=$("${INCG[@]}" "$cg" "$PROBE" udp-sendto 198.18.0.6 80 --send x --timeout-ms 1000 2>&1)
	assert_eq "error EPERM" "$out" "198.18.0.6:80/udp (neither rule)"
	sleep 0.3
	assert_eq 1 "$(count u6 datagrams)" "datagrams at 198.18.0.6:9"
}

# At most max-addrs addresses are kept per name and fence: the one expiring
# first goes first, from the maps too, long before its own expiry.
test_max_addrs_per_name() {
	setup || return
	local cg out i
	start_upstreams || { fail "upstreams"; return; }
	policy px 'dns proxy' 'svc.test:80/tcp'
	start_daemon --min-ttl 60 --max-addrs 3 || { fail "daemon"; return; }
	for i in 3 4 5 6 7; do
		listen_tcp "$NS_S" 198.18.0.$i 80 w$i || return
	done
	cg=$(fenced_cg cap px) || return
	out=$(dx "$cg" rr 198.18.0.9 svc.test A 5 80)
	assert_match '^queries=5 distinct=5 connected=5 failed=0' "$out" "5 answers, each connected at once"
	# [addresses learned, their map entries]: the evicted ones leave the maps
	# with the daemon's next sync, polled for (bounded)
	learned() {
		ctl status --json | jq -c '.fences[] | select(.dns == "proxy") | [.dns_proxy.addresses_learned, ([.allowlist[].prefix | select(test("^198\\.18\\.0\\.[3-7]/32$"))] | length)]'
	}
	wait_for 5 eval '[ "$(learned)" = "[3,3]" ]'
	assert_eq "[3,3]" "$(learned)" "[addresses learned, their map entries] with max-addrs 3"
}

# An empty cgroup: attaching a proxy-mode policy needs a namespace to listen
# in: refused without one, or taken from --netns-pid.
test_attach_empty_cgroup() {
	std_setup || return
	local cg out sl
	cg=$CG2/$TAG-empty
	mkdir -p "$cg" || return
	out=$(ctl attach --policy px --cgroup "$cg" 2>&1)
	assert_match "has no process to find its network namespace by" "$out" "attach of an empty cgroup"
	nsenter --net="/run/netns/$NS_C" sleep 300 >/dev/null 2>&1 </dev/null &
	sl=$!
	echo $sl >>"$WORK/spawned.pids"
	# $! is nsenter's pid before it has entered the namespace: until then the
	# daemon would find the host's, and put the fence's DNS proxy there
	wait_for 5 sh -c "[ \"\$(stat -L -c %i /proc/$sl/ns/net)\" = \"$(stat -L -c %i "/run/netns/$NS_C")\" ]" ||
		{ fail "the sleep did not enter $NS_C"; return; }
	out=$(ctl attach --policy px --cgroup "$cg" --netns-pid "$sl" 2>&1)
	assert_match "^fenced $cg with policy px \(cgroup id [0-9]+, DNS proxy\)$" "$out" "attach with --netns-pid"
	out=$(dx "$cg" q 198.18.0.9 svc.test A)
	assert_match '^rcode=0 from=198\.18\.0\.9:53 answers=198\.18\.0\.[3-7]$' "$out" "svc.test from the cgroup"
	out=$(dx "$cg" q 198.18.0.9 evil.test A)
	assert_match '^rcode=5 ' "$out" "evil.test from the cgroup"
}

# After a daemon restart the adopted fence's proxy listens again; while the
# daemon is down, DNS is denied, never let past.
test_restart() {
	std_setup || return
	local cg out
	cg=$(fenced_cg restart px) || return
	kill -TERM "$DPID"
	wait_for 5 sh -c "! kill -0 $DPID 2>/dev/null"
	out=$(dx "$cg" q 198.18.0.9 evil.test A)
	assert_match '^rcode=None ' "$out" "a query while the daemon is down"
	assert_eq 0 "$(queries 'evil\.test')" "queries upstream while the daemon is down"
	start_daemon || { fail "restart"; return; }
	# the refusal, kept in the fence's ring buffer, is logged by the new daemon with its reason
	wait_for 5 grep -q 'deny: .*"198\.18\.0\.9.*"no-dns-proxy' "$WORK/daemon.log" ||
		fail "no deny event with reason no-dns-proxy: $(grep -m3 'deny:' "$WORK/daemon.log")"
	out=$(dx "$cg" q 198.18.0.9 svc.test A)
	assert_match '^rcode=0 ' "$out" "svc.test after the restart"
	out=$(dx "$cg" q 198.18.0.9 evil.test A)
	assert_match '^rcode=5 ' "$out" "evil.test after the restart"
	# kill -9: the config still names the dead proxy's port; nothing answers there
	kill -KILL "$DPID"
	wait_for 5 sh -c "! kill -0 $DPID 2>/dev/null"
	out=$(dx "$cg" q 198.18.0.9 evil.test A tcp)
	assert_match '^rcode=None ' "$out" "a TCP query after kill -9"
	out=$(dx "$cg" q 198.18.0.9 svc.test A)
	assert_match '^rcode=None ' "$out" "an allowed name after kill -9"
	assert_eq 0 "$(queries 'evil\.test')" "queries for evil.test upstream"
	start_daemon || { fail "restart after kill -9"; return; }
	out=$(dx "$cg" q 198.18.0.9 svc.test A tcp)
	assert_match '^rcode=0 ' "$out" "svc.test over TCP after the second restart"
}

# Policy errors name the file, line and reason; resolve mode still refuses wildcards.
test_policy_errors() {
	std_setup || return
	local out
	policy bad 'dns proxi' 'svc.test'
	policy wild 'svc.test' '*.wild.test'
	out=$(ctl reload 2>&1)
	assert_match "bad.policy:1:5: unknown dns directive 'proxi'" "$out" "reload errors"
	assert_match "wild.policy: rule '\*\.wild\.test': wildcard rules need the DNS proxy" "$out" "reload errors"
	# a mode change while fences use the policy is refused
	fenced_cg mode px >/dev/null || return
	policy px 'svc.test:80/tcp'
	out=$(ctl reload 2>&1)
	assert_match "policy 'px' rejected, previous version stays in force: .*DNS mode changed" "$out" "mode change"
}

# cgfence run --dns-proxy: the same for one command, through the daemon.
test_run_dns_proxy() {
	std_setup || return
	local out
	listen_tcp "$NS_S" 198.18.0.6 80 w6 || return
	# stderr apart: it holds the warning that COMMAND runs as root
	out=$(in_client "$CGFENCE" run --dns-proxy --socket "$SOCK" --bpffs "$PIN_ROOT" -q \
		--allow '*.wild.test:80/tcp' -- "$PY" "$DX" q 198.18.0.9 r.wild.test A connect 80 \
		2>"$WORK/run.err")
	assert_eq "rcode=0 from=198.18.0.9:53 answers=198.18.0.6 connect=ok" "$out" \
		"run --dns-proxy (stderr: $(cat "$WORK/run.err"))"
	out=$(in_client "$CGFENCE" run --dns-proxy --socket "$SOCK" --bpffs "$PIN_ROOT" -q \
		--allow '*.wild.test:80/tcp' -- "$PY" "$DX" q 198.18.0.9 evil.test A 2>&1)
	assert_match '^rcode=5 ' "$out" "run --dns-proxy, denied name"
	assert_eq 0 "$(queries 'evil\.test')" "evil.test upstream"
	out=$(in_client "$CGFENCE" run --dns-proxy --socket "$WORK/nothing.sock" --allow '*.wild.test' -- true 2>&1)
	assert_eq 125 "$?" "run --dns-proxy without a daemon: exit status"
	assert_match 'needs cgfenced' "$out" "run --dns-proxy without a daemon"
}

run_tests "$@"
