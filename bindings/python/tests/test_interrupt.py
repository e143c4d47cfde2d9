"""run() and KeyboardInterrupt, SystemExit and Ctrl-C, as asyncio.run()
(issue 11, item 2).

asyncio.run() lets KeyboardInterrupt and SystemExit raised in a task out
after it has cancelled the remaining tasks and run their cleanup; on a real
SIGINT it cancels the main task first, lets its cleanup run, and then raises
KeyboardInterrupt.  The signal tests run a server with an open connection in
a child interpreter, send it SIGINT while it is idle, in I/O or running
Python code, and compare the exit status and output with the same program
on asyncio (CPython 3.13's when PYTHON313 names it, else this
interpreter's)."""
import asyncio
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import asyncstreams


def scenario(mod, exc, log):
    """A server with an open connection, one echo, a task of its own, and
    then exc raised in main()."""
    async def handler(reader, writer):
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except mod.CancelledError:
            # Not re-raised: asyncio 3.11.7 reports a cancelled handler
            # with a spurious traceback (3.13 closes it silently).
            pass
        finally:
            # Cancelled, or the client's close came first: either way the
            # handler is finished before run() returns.
            log.append('handler finished')
            writer.close()

    async def sidekick():
        try:
            await mod.sleep(30)
        finally:
            log.append('sidekick cleanup')

    kept = []


    async def main():
        server = await mod.start_server(handler, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await mod.open_connection('127.0.0.1', port)
        mod.create_task(sidekick())
        try:
            writer.write(b'hello\n')
            log.append(await reader.readline())
            raise exc
        finally:
            writer.close()
            server.close()

    try:
        mod.run(main())
    except BaseException as e:  # noqa: B902 - recording what run() raised
        log.append(('raised', type(e).__name__, e.args))
    else:
        log.append('returned')
    return log


class RaisedInMain(unittest.TestCase):
    def check(self, exc):
        want = scenario(asyncio, exc, [])
        got = scenario(asyncstreams, exc, [])
        # The echo, then the cleanup of the other tasks (which run() cancels
        # together, in no particular order), then what run() raised.
        self.assertEqual(got[:1], want[:1])
        self.assertEqual(sorted(got[1:-1]), sorted(want[1:-1]))
        self.assertEqual(got[-1], want[-1])
        self.assertEqual(len(got), 4)
        self.assertEqual(got[-1][:2], ('raised', type(exc).__name__))

    def test_keyboard_interrupt(self):
        self.check(KeyboardInterrupt())

    def test_system_exit(self):
        self.check(SystemExit(3))

    def test_loop_runs_again_after_a_keyboard_interrupt(self):
        # run_until_complete() itself: the next run is not stopped by the
        # first one's leftovers.
        loop = asyncstreams.new_event_loop()

        async def boom():
            raise KeyboardInterrupt

        async def fine():
            await asyncstreams.sleep(0.01)
            return 'ran'
        with self.assertRaises(KeyboardInterrupt):
            loop.run_until_complete(boom())
        self.assertEqual(loop.run_until_complete(fine()), 'ran')
        loop.close()


# The child: a server with an open connection; after "ready", it stays idle,
# keeps a stream of echoes going, or runs Python code, until SIGINT.
CHILD = textwrap.dedent('''
    import signal
    import sys
    import time

    if sys.argv[1] == 'asyncstreams':
        import asyncstreams as asyncio
    else:
        import asyncio
    state = sys.argv[2]
    # Ctrl-C as an interactive program has it: a shell starts a background
    # job (make check &, perhaps) with SIGINT ignored, which Python keeps,
    # and then asyncio.run() leaves it alone.
    signal.signal(signal.SIGINT, signal.default_int_handler)


    async def handler(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except asyncio.CancelledError:
            print('handler cancelled', flush=True)
            raise


    kept = []


    async def main():
        server = await asyncio.start_server(handler, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        # Kept past main()'s end: CPython 3.13's StreamWriter.__del__ closes
        # the connection when main's frame goes, and the handler could then
        # see EOF and end before asyncio.run() cancels it, so that even
        # asyncio's output would depend on timing.
        kept.append(writer)
        writer.write(b'hello\\n')
        print((await reader.readline()).decode().strip(), flush=True)
        print('ready', flush=True)
        try:
            if state in ('idle', 'twice'):
                await asyncio.sleep(30)
            elif state == 'io':
                while True:
                    writer.write(b'x' * 4095 + b'\\n')
                    await reader.readline()
            elif state == 'python':
                while True:
                    t = time.monotonic()
                    while time.monotonic() - t < 0.01:
                        pass
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            print('main cancelled', flush=True)
            if state == 'twice':
                print('cleaning up', flush=True)
                await asyncio.sleep(30)
            raise
        finally:
            # Cleanup that awaits: asyncio lets it finish before it cancels
            # the handler, so the order of the lines says who was cancelled
            # when.
            await asyncio.sleep(0.05)
            print('main cleanup', flush=True)


    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print('KeyboardInterrupt', flush=True)
        sys.exit(3)
    print('returned', flush=True)
''')

STATES = ['idle', 'io', 'python']
RUNS = 20
# Generous: these only bound a hang, on a machine that may be busy.
TIMEOUT = 60


def oracle_python():
    py = os.environ.get('PYTHON313')
    if py and os.path.exists(py):
        return py
    return sys.executable


def oracle_env():
    # asyncio needs none of the binding's environment (a sanitizer runtime
    # preloaded into another interpreter, the staged package).
    env = dict(os.environ)
    for k in ('LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'PYTHONPATH', 'LD_LIBRARY_PATH'):
        env.pop(k, None)
    return env


def read_line(p, deadline):
    """The child's next stdout line, or None at the deadline."""
    line = b''
    with selectors.DefaultSelector() as sel:
        sel.register(p.stdout, selectors.EVENT_READ)
        while not line.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            c = os.read(p.stdout.fileno(), 1)
            if not c:
                return line.decode() or None
            line += c
    return line.decode()


def interrupt(python, env, path, mod, state, delay, signals_at):
    """Run the child; send SIGINT after each line in signals_at has been
    printed (and delay seconds more); return (status, stdout, stderr)."""
    p = subprocess.Popen([python, path, mod, state], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    out = ''
    try:
        deadline = time.monotonic() + TIMEOUT
        for mark in signals_at:
            while True:
                line = read_line(p, deadline)
                if line is None:
                    raise AssertionError(f'no {mark!r} line from the child; so far {out!r}')
                out += line
                if line == mark + '\n':
                    break
            time.sleep(delay)
            p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=TIMEOUT)
    except BaseException:
        p.kill()
        p.communicate()
        raise
    return p.returncode, out + rest.decode(), err.decode()


HANDLER_LINE = 'handler cancelled\n'


def without_handler_line(outcome):
    return outcome[0], outcome[1].replace(HANDLER_LINE, '')


class Sigint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, 'child.py')
        with open(cls.path, 'w') as f:
            f.write(CHILD)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compare(self, state, runs, signals_at):
        py = oracle_python()
        want = {interrupt(py, oracle_env(), self.path, 'asyncio', state, 0.01, signals_at)[:2]
                for _ in range(2)}
        # asyncio's outcome does not depend on where the signal lands, but
        # for one line while echoes run: on a loaded machine (the sanitizer
        # run in CI) its handler sometimes ends without printing "handler
        # cancelled".  In that state the line is left out of the comparison,
        # for asyncio and for us alike; every other line must match.
        loose = state == 'io'
        if loose:
            want = {without_handler_line(w) for w in want}
        self.assertEqual(len(want), 1, want)
        status = next(iter(want))[0]
        self.assertEqual(status, 3, want)
        rng = random.Random(state)
        for i in range(runs):
            delay = rng.uniform(0, 0.03)
            rc, out, err = interrupt(sys.executable, os.environ, self.path, 'asyncstreams',
                                     state, delay, signals_at)
            got = without_handler_line((rc, out)) if loose else (rc, out)
            self.assertIn(got, want,
                          f'run {i} ({state}, SIGINT {delay:.3f}s after ready), stderr:\n'
                          f'{err[-3000:]}')
            self.assertNotIn('Traceback', err)

    def test_idle(self):
        self.compare('idle', RUNS, ['ready'])

    def test_in_io(self):
        self.compare('io', RUNS, ['ready'])

    def test_running_python_code(self):
        self.compare('python', RUNS, ['ready'])

    def test_second_sigint_during_cleanup(self):
        # The first cancels main; the second, while main's cleanup awaits,
        # raises KeyboardInterrupt at once, and run() still cancels main.
        self.compare('twice', 5, ['ready', 'cleaning up'])


if __name__ == '__main__':
    unittest.main()
