"""many_clients.py PORT N PID [ROUNDS [--step]] - N connections at once to a
line echo server on 127.0.0.1:PORT whose process is PID, ROUNDS times
(default 2); tests/many_connections.c and the binding's
test_many_connections.py run it.  Each round:

1. opens the N connections, each sending one line and waiting for its echo,
   with at most PACE of them unanswered at a time (the server's listen
   backlog is 100, and a connect beyond it waits a second for a resend);
2. with all N open, sends a second line on every one at once and reads
   every echo back: N connections active in the same turns;
3. closes them all and waits for the server's fd count to come back to
   what it was before the first round.

Every echo is compared with what was sent.  After each round it prints
"round R: fds=BEFORE/PEAK/AFTER rss_kib=BEFORE/PEAK/AFTER secs=T" (the
server's open fds and resident memory, from /proc/PID; the memory is for
information only, the server checks its own) and, with --step, waits for
a line on stdin: the server's word that it has measured itself.  Exits 1
on a wrong or missing echo, or when the fds do not come back within the
round's minute.
"""
import os
import selectors
import socket
import sys
import time

PACE = 90


def fd_count(pid):
    return len(os.listdir(f'/proc/{pid}/fd'))


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return -1


class Conn:
    def __init__(self, i):
        self.i = i
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.out = b''
        self.want = b''
        self.got = b''

    def send_line(self, line):
        self.out += line
        self.want += line


def one_round(addr, n, pid, fds0):
    """Steps 1-3; returns the peak and final (fds, rss_kib)."""
    sel = selectors.DefaultSelector()
    conns = []
    start = time.monotonic()
    deadline = start + 60
    pending = [0]

    def pump(waiting):
        """Send and receive until fewer than `waiting` answers are missing."""
        while pending[0] >= waiting:
            if time.monotonic() > deadline:
                raise SystemExit(f'many_clients: timed out, {pending[0]} echoes missing')
            for key, mask in sel.select(1.0):
                c = key.data
                if mask & selectors.EVENT_WRITE and c.out:
                    try:
                        sent = c.sock.send(c.out)
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                    c.out = c.out[sent:]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if mask & selectors.EVENT_READ:
                    data = c.sock.recv(65536)
                    if not data:
                        raise SystemExit(f'many_clients: connection {c.i} closed early')
                    c.got += data
                    if not c.want.startswith(c.got):
                        raise SystemExit(f'many_clients: connection {c.i}: sent {c.want!r}, '
                                         f'got {c.got!r}')
                    if c.got == c.want:
                        pending[0] -= 1

    # 1. Open them all, paced.
    for i in range(n):
        c = Conn(i)
        conns.append(c)
        c.sock.connect_ex(addr)
        c.send_line(b'hello %d\n' % i)
        sel.register(c.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, c)
        pending[0] += 1
        pump(PACE)
    pump(1)

    # 2. A second line on every connection at once, of varied lengths.
    for c in conns:
        c.send_line(b'%d %s\n' % (c.i, b'x' * (c.i % 97)))
        sel.modify(c.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, c)
    pending[0] = n
    pump(1)
    peak = fd_count(pid), rss_kib(pid)

    # 3. Close them all; the server's fds must come back.
    for c in conns:
        sel.unregister(c.sock)
        c.sock.close()
    sel.close()
    while fd_count(pid) != fds0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return peak, (fd_count(pid), rss_kib(pid)), time.monotonic() - start


def main():
    port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    step = sys.argv[5:] == ['--step']
    fds0, rss0 = fd_count(pid), rss_kib(pid)
    for r in range(1, rounds + 1):
        (fds1, rss1), (fds2, rss2), secs = one_round(('127.0.0.1', port), n, pid, fds0)
        print(f'round {r}: fds={fds0}/{fds1}/{fds2} rss_kib={rss0}/{rss1}/{rss2} '
              f'secs={secs:.2f}', flush=True)
        if fds1 < fds0 + n:
            raise SystemExit(f'many_clients: the server had {fds1} fds with {n} clients')
        if fds2 != fds0:
            raise SystemExit(f'many_clients: the server has {fds2} fds, not {fds0}, '
                             'after the clients left')
        if step and not sys.stdin.readline():
            raise SystemExit('many_clients: the server went away')


if __name__ == '__main__':
    main()
