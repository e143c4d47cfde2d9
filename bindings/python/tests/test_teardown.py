"""Tearing a server down in every order (issue 11, item 1).

A connection that closes just before its loop stops, the loop closing, the
server's last reference going, the Python objects being collected: each can
come first.  When the loop closed before a closing connection's callback
ran, as_loop_close() freed the connection's record while the server still
listed it, and the Server's dealloc then wrote into freed memory; from
Python that crashed the interpreter, in the test below or at exit.

Each scenario runs in a child interpreter, so that a crash is this test's
failure and not the end of the test runner.  A child runs every order of
the teardown steps for one way of stopping the loop, each order on a fresh
loop, and says which order it is on before it starts it."""
import itertools
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

# The ways a loop stops right after (or as) one of its served connections
# closes, and the steps that may then come in any order.
WAYS = ['server-abort', 'server-close', 'client-close', 'peer-eof', 'main-returns']
STEPS = ['close-writers', 'close-loop', 'drop-server', 'drop-streams', 'collect']

CHILD = textwrap.dedent('''
    import gc
    import itertools
    import sys

    import asyncstreams as asyncio

    way = sys.argv[1]
    steps = sys.argv[2].split()


    def one(order):
        loop = asyncio.new_event_loop()
        objs = {}
        got_line = loop.create_future()

        async def handler(reader, writer):
            await reader.readline()
            if way == 'server-abort':
                writer.transport.abort()
                loop.stop()
            elif way == 'server-close':
                writer.close()
                loop.stop()
            elif way == 'peer-eof':
                got_line.set_result(None)
                await reader.read()
                loop.stop()
            elif way == 'main-returns':
                writer.transport.abort()
                got_line.set_result(None)
            else:
                got_line.set_result(None)
                await asyncio.sleep(10)

        # Only objs holds the server and the client's streams (not main's
        # frame, which goes when the loop closes), so each step below is
        # the one that lets go of them.
        async def main():
            objs['server'] = await asyncio.start_server(handler, '127.0.0.1', 0)
            port = objs['server'].sockets[0].getsockname()[1]
            objs['reader'], objs['writer'] = await asyncio.open_connection('127.0.0.1', port)
            objs['writer'].write(b'x\\n')
            if way == 'main-returns':
                await got_line
                return
            if way in ('client-close', 'peer-eof'):
                await got_line
                objs['writer'].close()
                if way == 'client-close':
                    loop.stop()
            await asyncio.sleep(10)

        try:
            loop.run_until_complete(main())
        except RuntimeError as e:
            if str(e) != 'Event loop stopped before Future completed.':
                raise
        for step in order:
            try:
                if step == 'close-writers':
                    if 'writer' in objs:
                        objs['writer'].close()
                elif step == 'close-loop':
                    loop.close()
                elif step == 'drop-server':
                    objs.pop('server', None)
                elif step == 'drop-streams':
                    objs.pop('reader', None)
                    objs.pop('writer', None)
                elif step == 'collect':
                    gc.collect()
            except RuntimeError as e:
                # Closing a writer whose loop is closed: asyncio raises too.
                if 'closed' not in str(e):
                    raise
        loop.close()
        objs.clear()
        del loop, got_line
        gc.collect()


    for order in itertools.permutations(steps):
        print(' '.join(order), flush=True)
        one(order)
    print('survived', flush=True)
''')

# asyncio.run() ended by an exception raised inside main() while a served
# connection is open: the server and the streams are collected after the
# loop closed (the traceback holds main's frame).
RUN_CHILD = textwrap.dedent('''
    import gc
    import sys

    import asyncstreams as asyncio

    exc = {'KeyboardInterrupt': KeyboardInterrupt, 'SystemExit': SystemExit}[sys.argv[1]]


    async def handler(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()


    async def main():
        server = await asyncio.start_server(handler, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(b'x\\n')
        print((await reader.readline()).decode().strip(), flush=True)
        raise exc()


    try:
        asyncio.run(main())
    except BaseException as e:
        print(type(e).__name__, flush=True)
        del e
    gc.collect()
    print('survived', flush=True)
''')


def run_child(source, *args):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'child.py')
        with open(path, 'w') as f:
            f.write(source)
        # Generous: a loaded machine is slow, and a hang is a failure too.
        p = subprocess.run([sys.executable, '-X', 'dev', path] + list(args),
                           capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


class Teardown(unittest.TestCase):
    pass


def make_order_test(way):
    def test(self):
        rc, out, err = run_child(CHILD, way, ' '.join(STEPS))
        lines = out.splitlines()
        last = lines[-1] if lines else '(none)'
        self.assertEqual(rc, 0, f'died in order {last!r} (status {rc}):\n{err[-3000:]}')
        self.assertEqual(lines[-1], 'survived')
        self.assertEqual(len(lines), len(list(itertools.permutations(STEPS))) + 1)
    return test


def make_run_test(exc):
    def test(self):
        rc, out, err = run_child(RUN_CHILD, exc)
        self.assertEqual(rc, 0, f'status {rc}:\n{err[-3000:]}')
        self.assertEqual(out.splitlines()[-1:], ['survived'])
    return test


for _w in WAYS:
    setattr(Teardown, 'test_every_order_after_' + _w.replace('-', '_'), make_order_test(_w))
for _e in ('KeyboardInterrupt', 'SystemExit'):
    setattr(Teardown, 'test_run_ended_by_' + _e, make_run_test(_e))

if __name__ == '__main__':
    unittest.main()
