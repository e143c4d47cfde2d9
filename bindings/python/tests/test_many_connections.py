"""10,000 connections at once to the Python binding's echo server, on every
backend the build has: tests/many_connections.c's test for the C server,
with asyncio's echo handler on asyncstreams.

The clients are tests/many_clients.py in another process (two rounds, every
line compared, the server's fds back after each).  After each round the
server checks in its own process that nothing of the connections is left:
as many C library objects alive (as_loop_objects()) and about as many
Python memory blocks (sys.getallocatedblocks()) as before.  It needs N +
100 fds: the test raises RLIMIT_NOFILE up to the hard limit, and is
skipped, saying why, when that is too low."""
import gc
import os
import resource
import subprocess
import sys
import unittest

import asyncstreams
from asyncstreams import _core

N = 10000
ROUNDS = 2
# Python blocks a round may leave beyond those alive before it: a leak of
# one object per connection would be N.
BLOCKS_MAX = 500
SRCDIR = os.environ.get('AS_SRCDIR') or os.path.join(os.path.dirname(__file__), '..', '..', '..')


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise unittest.SkipTest(f'{N} connections need {need} fds per process, '
                                    f'and the hard limit (ulimit -Hn) is {hard}')
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


async def handle_echo(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def measure(loop, objects0, blocks, clients, deadline):
    """After a round: wait (at most 10 s) for the last handlers to return,
    count, and tell the clients to go on.  A callback, not a task: a task
    would be one of the objects it counts."""
    if _core.as_loop_objects(loop) > objects0 and loop.time() < deadline:
        loop.call_later(0.01, measure, loop, objects0, blocks, clients, deadline)
        return
    gc.collect()
    blocks.append((_core.as_loop_objects(loop), sys.getallocatedblocks()))
    clients.stdin.write(b'\n')
    clients.stdin.flush()


async def serve_many(backend):
    """The clients against an echo server on this loop; returns the C
    objects and Python blocks alive before and after each round."""
    loop = asyncstreams.get_running_loop()
    server = await asyncstreams.start_server(handle_echo, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    eof = loop.create_future()
    gc.collect()
    objects0 = _core.as_loop_objects(loop)
    blocks = [(objects0, sys.getallocatedblocks())]
    clients = subprocess.Popen(
        [sys.executable, os.path.join(SRCDIR, 'tests', 'many_clients.py'),
         str(port), str(N), str(os.getpid()), str(ROUNDS), '--step'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    said = b''

    def readable():
        nonlocal said
        data = os.read(clients.stdout.fileno(), 4096)
        said += data
        while b'\n' in said:
            line, said = said.split(b'\n', 1)
            print(f'  {backend}: {line.decode()}', flush=True)
            if line.startswith(b'round '):
                measure(loop, objects0, blocks, clients, loop.time() + 10)
        if not data:
            loop.remove_reader(clients.stdout.fileno())
            eof.set_result(None)
    loop.add_reader(clients.stdout.fileno(), readable)
    try:
        await eof
    finally:
        clients.stdout.close()
        clients.stdin.close()
        status = clients.wait()
        server.close()
        await server.wait_closed()
    return status, blocks


class ManyConnections(unittest.TestCase):
    def test_ten_thousand_connections_on_each_backend(self):
        raise_fd_limit(N + 100)
        name, i = _core.as_loop_backend_at(0), 0
        while name is not None:
            with self.subTest(backend=name):
                status, counts = asyncstreams.run(serve_many(name), backend=name)
                print(f'  {name}: (C objects, Python blocks) before and after each '
                      f'round: {counts}', flush=True)
                self.assertEqual(status, 0)
                self.assertEqual(len(counts), ROUNDS + 1)
                # At most as many C objects as before (one of those, the
                # server's start, may have gone since).
                self.assertLessEqual(max(objects for objects, _ in counts), counts[0][0])
                for _, later in counts[1:]:
                    self.assertLessEqual(later - counts[0][1], BLOCKS_MAX, counts)
            i += 1
            name = _core.as_loop_backend_at(i)


if __name__ == '__main__':
    unittest.main()
