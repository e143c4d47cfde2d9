"""Choosing the loop's backend from Python: new_event_loop(backend=...),
run(..., backend=...), ASYNCSTREAMS_BACKEND, and an fd above FD_SETSIZE
watched on each backend."""
import gc
import os
import resource
import socket
import unittest
import warnings

import asyncstreams
from asyncstreams import _core


def backends():
    """The build's backends, best first."""
    names = []
    while _core.as_loop_backend_at(len(names)) is not None:
        names.append(_core.as_loop_backend_at(len(names)))
    return names


class EnvVar:
    """Set ASYNCSTREAMS_BACKEND for a block, then put it back."""

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.saved = os.environ.get('ASYNCSTREAMS_BACKEND')
        os.environ['ASYNCSTREAMS_BACKEND'] = self.value

    def __exit__(self, *exc):
        if self.saved is None:
            del os.environ['ASYNCSTREAMS_BACKEND']
        else:
            os.environ['ASYNCSTREAMS_BACKEND'] = self.saved


async def echo_one_line():
    """A server and a client on the running loop: one line there and back."""
    async def handle(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    server = await asyncstreams.start_server(handle, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncstreams.open_connection('127.0.0.1', port)
    writer.write(b'hello\n')
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return asyncstreams.get_running_loop().backend, line


class BackendTests(unittest.TestCase):
    def test_the_build_has_select_and_on_linux_poll_and_epoll(self):
        self.assertIn('select', backends())
        if os.uname().sysname == 'Linux':
            self.assertEqual(backends(), ['epoll', 'poll', 'select'])

    def test_each_backend_by_name_runs_streams(self):
        for name in backends():
            with self.subTest(backend=name):
                loop = asyncstreams.new_event_loop(backend=name)
                self.assertEqual(loop.backend, name)
                loop.close()
                self.assertEqual(asyncstreams.run(echo_one_line(), backend=name),
                                 (name, b'hello\n'))

    def test_best_is_the_first_of_the_table(self):
        loop = asyncstreams.new_event_loop('best')
        self.assertEqual(loop.backend, backends()[0])
        loop.close()

    def test_the_default_is_select_unless_the_variable_names_another(self):
        with EnvVar(''):
            loop = asyncstreams.new_event_loop()
            self.assertEqual(loop.backend, 'select')
            loop.close()
        with EnvVar('poll'):
            self.assertEqual(asyncstreams.run(echo_one_line())[0], 'poll')
            # A name given in the call wins over the variable.
            self.assertEqual(asyncstreams.run(echo_one_line(), backend='select')[0],
                             'select')

    def test_an_unknown_name_is_a_value_error_that_lists_the_backends(self):
        with self.assertRaises(ValueError) as cm:
            asyncstreams.new_event_loop('kqueue')
        self.assertEqual(str(cm.exception),
                         "unknown event loop backend 'kqueue' (this build has "
                         + ''.join(f"'{b}', " for b in backends()) + "or 'best')")
        with EnvVar('nope'):
            with self.assertRaisesRegex(ValueError, "^ASYNCSTREAMS_BACKEND names an "
                                        "unknown event loop backend 'nope'"):
                asyncstreams.Loop()
        with self.assertRaises(TypeError):
            asyncstreams.new_event_loop(backend=3)

    def test_run_with_an_unknown_backend_closes_its_coroutine(self):
        coro = echo_one_line()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            with self.assertRaises(ValueError):
                asyncstreams.run(coro, backend='nope')
            del coro
            gc.collect()
        self.assertEqual([w for w in caught if w.category is RuntimeWarning], [])


class HighFdTests(unittest.TestCase):
    def test_an_fd_above_fd_setsize_is_watched_on_each_backend(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        high = 3000
        if soft <= high:
            if hard != resource.RLIM_INFINITY and hard <= high:
                self.fail(f'cannot raise RLIMIT_NOFILE to {high + 1} (hard limit {hard})')
            resource.setrlimit(resource.RLIMIT_NOFILE, (high + 1, hard))
        a, b = socket.socketpair()
        try:
            os.dup2(a.fileno(), high)
            for name in backends():
                with self.subTest(backend=name):
                    loop = asyncstreams.new_event_loop(name)
                    got = []

                    def readable():
                        got.append(os.read(high, 10))
                        loop.stop()
                    loop.add_reader(high, readable)
                    b.send(b'up')
                    loop.run_forever()
                    self.assertTrue(loop.remove_reader(high))
                    loop.close()
                    self.assertEqual(got, [b'up'])
        finally:
            os.close(high)
            a.close()
            b.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == '__main__':
    unittest.main()
