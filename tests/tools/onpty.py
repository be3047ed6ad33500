#!/usr/bin/env python3
"""onpty.py [--ctrl-c] COMMAND [ARG]...

Runs COMMAND with a new pty as its stdin and controlling terminal (as a
login shell's job would have it) and its stdout on a pipe, and prints what
COMMAND wrote, its lines joined by spaces, then "status=N" (N as a shell
gives it: 128+S when killed by signal S).  --ctrl-c types ^C on the
terminal once COMMAND has written its first line.  Bounded: COMMAND is
killed after 30 s.
"""
import fcntl, os, pty, subprocess, sys, termios

args = sys.argv[1:]
ctrl_c = args[:1] == ["--ctrl-c"]
if ctrl_c:
    args = args[1:]
master, slave = pty.openpty()


def own_terminal():
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)


p = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                     preexec_fn=own_terminal)
said = []
if ctrl_c:
    said.append(p.stdout.readline().decode().strip())
    os.write(master, b"\x03")  # SIGINT to the terminal's foreground group
said += [line.decode().strip() for line in p.stdout]
try:
    status = p.wait(timeout=30)
except subprocess.TimeoutExpired:
    p.kill()
    status = p.wait()
print(" ".join(said + ["status=%d" % (128 - status if status < 0 else status)]))
