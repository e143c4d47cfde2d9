"""open_connection, start_server, StreamWriter, Server: every method, the
error types, interop with asyncio, and the leak check."""
import asyncio as std_asyncio
import gc
import os
import socket
import sys
import tempfile
import threading
import tracemalloc
import unittest

import asyncstreams as aio


def run(coro):
    return aio.run(coro)


async def echo_handler(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def echo_server(handler=echo_handler, **kw):
    server = await aio.start_server(handler, '127.0.0.1', 0, **kw)
    return server, server.sockets[0].getsockname()[1]


class Writer(unittest.TestCase):
    def test_methods(self):
        async def main():
            server, port = await echo_server()
            reader, writer = await aio.open_connection('127.0.0.1', port)
            self.assertIsInstance(writer, aio.StreamWriter)
            self.assertIsInstance(reader, aio.StreamReader)
            self.assertEqual(writer.get_extra_info('peername'), ('127.0.0.1', port))
            sockname = writer.get_extra_info('sockname')
            self.assertEqual(sockname[0], '127.0.0.1')
            sock = writer.get_extra_info('socket')
            self.assertEqual(sock.getsockname(), sockname)
            self.assertEqual(sock.getpeername(), ('127.0.0.1', port))
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            self.assertEqual(sock.family, socket.AF_INET)
            self.assertEqual(writer.get_extra_info('nothing', 42), 42)
            self.assertTrue(writer.can_write_eof())
            self.assertFalse(writer.is_closing())
            self.assertEqual(writer.transport.get_write_buffer_size(), 0)
            self.assertEqual(writer.transport.get_write_buffer_limits(), (16384, 65536))
            writer.transport.set_write_buffer_limits(high=1000)
            self.assertEqual(writer.transport.get_write_buffer_limits(), (250, 1000))
            with self.assertRaises(ValueError):
                writer.transport.set_write_buffer_limits(high=1, low=2)
            writer.write(b'ab')
            writer.write(bytearray(b'cd'))
            writer.write(memoryview(b'ef'))
            writer.writelines([b'gh', bytearray(b'ij'), b'kl\n'])
            with self.assertRaises(TypeError):
                writer.write('text')
            self.assertIsNone(await writer.drain())
            self.assertEqual(await reader.readline(), b'abcdefghijkl\n')
            await writer.flush()
            self.assertGreaterEqual(writer.bytes_sent(), 13)
            writer.write_eof()
            writer.write_eof()  # idempotent
            with self.assertRaisesRegex(RuntimeError, 'write_eof'):
                writer.write(b'x')
            self.assertEqual(await reader.read(), b'')  # the server echoed EOF
            writer.close()
            self.assertTrue(writer.is_closing())
            await writer.wait_closed()
            await writer.wait_closed()  # again: still fine
            with self.assertRaisesRegex(ConnectionResetError, 'Connection lost'):
                await writer.drain()
            server.close()
            await server.wait_closed()
        run(main())

    def test_async_with_and_many_writes(self):
        async def main():
            server, port = await echo_server()
            reader, writer = await aio.open_connection('127.0.0.1', port)
            async with writer:
                lines = [b'%d\n' % i for i in range(2000)]  # more than IOV_MAX
                writer.writelines(lines)
                await writer.drain()
                got = await reader.readexactly(sum(map(len, lines)))
                self.assertEqual(got, b''.join(lines))
            self.assertTrue(writer.is_closing())
            async with server:
                pass
            self.assertFalse(server.is_serving())
        run(main())

    def test_drain_backpressure(self):
        async def main():
            hold = aio.Event()

            async def slow(reader, writer):
                await hold.wait()
                await echo_handler(reader, writer)
            server, port = await echo_server(slow)
            reader, writer = await aio.open_connection('127.0.0.1', port)
            chunk = b'x' * 65536
            waited = False
            sent = 0
            while not waited:
                writer.write(chunk)
                sent += len(chunk)
                d = writer.drain()
                if not d.done():
                    waited = True
                    self.assertGreater(writer.transport.get_write_buffer_size(), 65536)
                    hold.set()
                    got = 0
                    while got < sent:
                        got += len(await reader.read(1 << 20))
                    await d
                    self.assertLessEqual(writer.transport.get_write_buffer_size(), 16384)
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
        run(main())

    def test_write_keeps_a_reference_to_bytes_and_copies_the_rest(self):
        async def main():
            server, port = await echo_server()
            reader, writer = await aio.open_connection('127.0.0.1', port)
            data = bytes(range(256)) * 4  # a fresh object
            before = sys.getrefcount(data)
            writer.write(data)
            # Queued until the end of the turn, by reference, not copied.
            self.assertEqual(sys.getrefcount(data), before + 1)
            await writer.flush()
            self.assertEqual(sys.getrefcount(data), before)  # released once sent
            self.assertEqual(await reader.readexactly(len(data)), data)
            # A bytearray can change after write(): it is copied.
            mutable = bytearray(b'before')
            writer.write(mutable)
            mutable[:] = b'AFTER!'
            self.assertEqual(await reader.readexactly(6), b'before')
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
        run(main())

    def test_close_within_aborts_a_stuck_flush_at_the_deadline(self):
        async def main():
            hold = aio.Event()

            async def never_reads(reader, writer):
                await hold.wait()
                writer.close()
            server, port = await echo_server(never_reads)
            reader, writer = await aio.open_connection('127.0.0.1', port)
            writer.write(b'x' * (8 << 20))  # more than the kernels hold
            self.assertGreater(writer.transport.get_write_buffer_size(), 0)
            loop = aio.get_running_loop()
            t0 = loop.time()
            writer.close_within(0.3)
            await writer.wait_closed()
            took = loop.time() - t0
            self.assertGreaterEqual(took, 0.25)
            self.assertLess(took, 2.0)  # margin for a loaded machine
            self.assertLess(writer.bytes_sent(), 8 << 20)
            with self.assertRaises(TypeError):
                writer.close_within('soon')
            hold.set()
            server.close()
            await server.wait_closed()
        run(main())

    def test_peer_reset_surfaces_as_connection_error(self):
        async def main():
            async def rst(reader, writer):
                writer.transport.abort()
            server, port = await echo_server(rst)
            reader, writer = await aio.open_connection('127.0.0.1', port)
            with self.assertRaises(ConnectionResetError):
                while True:
                    await reader.read(100) or (await aio.sleep(0.01))
                    writer.write(b'x' * 1000)
                    await writer.drain()
            writer.close()
            with self.assertRaises(ConnectionResetError):
                await writer.wait_closed()
            server.close()
            await server.wait_closed()
        run(main())


class Connect(unittest.TestCase):
    def test_errors(self):
        async def main():
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
            s.close()
            with self.assertRaises(ConnectionRefusedError) as cm:
                await aio.open_connection('127.0.0.1', port)
            self.assertEqual(str(cm.exception),
                             f"[Errno 111] Connect call failed ('127.0.0.1', {port})")
            with self.assertRaises(socket.gaierror) as cm:
                await aio.open_connection('no-such-host.invalid', 80)
            self.assertLess(cm.exception.errno, 0)
            with self.assertRaises(ValueError) as cm:
                await aio.open_connection('127.0.0.1', 1, server_hostname='x')
            self.assertEqual(str(cm.exception), 'server_hostname is only meaningful with ssl')
            with self.assertRaises(ValueError):
                await aio.open_connection('127.0.0.1', 1, limit=0)
        run(main())

    def test_same_errors_as_asyncio(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()

        def outcome(mod):
            async def main():
                try:
                    await mod.open_connection('127.0.0.1', port)
                except OSError as e:
                    return type(e), e.errno, str(e)
            return mod.run(main())
        self.assertEqual(outcome(aio), outcome(std_asyncio))

    def test_host_or_port_none(self):
        # As asyncio: None for the host is the loopback address, None for the
        # port is port 0, and both None is CPython 3.13's ValueError.
        async def main():
            server, port = await echo_server()
            r, w = await aio.open_connection(None, port)
            self.assertEqual(w.get_extra_info('peername'), ('127.0.0.1', port))
            w.close()
            await w.wait_closed()
            for call in (lambda: aio.open_connection('127.0.0.1', None),
                         lambda: aio.open_connection(host='127.0.0.1', port=None)):
                with self.assertRaises(ConnectionRefusedError) as cm:
                    await call()
                self.assertEqual(str(cm.exception),
                                 "[Errno 111] Connect call failed ('127.0.0.1', 0)")
            for call in (lambda: aio.open_connection(), lambda: aio.open_connection(None, None)):
                with self.assertRaises(ValueError) as cm:
                    await call()
                self.assertEqual(str(cm.exception),
                                 'host and port was not specified and no sock specified')
            server.close()
            await server.wait_closed()
        run(main())

    def test_port_out_of_range(self):
        # CPython 3.13's words, from socket.connect() and socket.bind()
        # (checked against it; the interpreter running this may be older).
        # asyncio lets a host name through to getaddrinfo(), which wraps
        # 99999 to 34463: asyncstreams refuses that too.
        async def main():
            server, port = await echo_server()
            for bad in (99999, 65536, -1, '99999', 10 ** 30):
                for host in ('127.0.0.1', 'localhost'):
                    with self.assertRaises(OverflowError) as cm:
                        await aio.open_connection(host, bad)
                    self.assertEqual(str(cm.exception), 'connect(): port must be 0-65535.')
                with self.assertRaises(OverflowError) as cm:
                    await aio.open_connection('127.0.0.1', port,
                                              local_addr=('127.0.0.1', bad))
                self.assertEqual(str(cm.exception), 'bind(): port must be 0-65535.')
            server.close()
            await server.wait_closed()
        run(main())

    def test_cancel_connect(self):
        async def main():
            # A name goes to the resolver thread: the connect is pending
            # when the task is cancelled.
            t = aio.create_task(aio.open_connection('localhost', 9))
            await aio.sleep(0)
            self.assertFalse(t.done())
            t.cancel()
            with self.assertRaises(aio.CancelledError):
                await t
        run(main())

    def test_local_addr_and_limit(self):
        async def main():
            server, port = await echo_server()
            reader, writer = await aio.open_connection('127.0.0.1', port, limit=10,
                                                       local_addr=('127.0.0.1', 0))
            writer.write(b'0123456789abcdef\n')
            with self.assertRaises(ValueError):
                await reader.readline()
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
        run(main())


class Servers(unittest.TestCase):
    def test_lifecycle(self):
        async def main():
            server = await aio.start_server(echo_handler, '127.0.0.1', 0, start_serving=False)
            self.assertFalse(server.is_serving())
            self.assertIs(server.get_loop(), aio.get_running_loop())
            await server.start_serving()
            self.assertTrue(server.is_serving())
            port = server.sockets[0].getsockname()[1]
            conns = [await aio.open_connection('127.0.0.1', port) for _ in range(3)]
            for r, w in conns:
                w.write(b'hi\n')
                self.assertEqual(await r.readline(), b'hi\n')
            self.assertEqual(server.active_connections(), 3)
            server.close()
            self.assertFalse(server.is_serving())
            self.assertEqual(server.sockets, ())
            wc = aio.ensure_future(server.wait_closed())
            await aio.sleep(0.01)
            self.assertFalse(wc.done())  # clients are still connected
            server.close_clients()
            for r, w in conns:
                self.assertEqual(await r.read(), b'')
                w.close()
                await w.wait_closed()
            await wc
        run(main())

    def test_abort_clients(self):
        async def main():
            server, port = await echo_server()
            r, w = await aio.open_connection('127.0.0.1', port)
            w.write(b'x\n')
            await r.readline()
            server.close()
            server.abort_clients()
            with self.assertRaises(ConnectionResetError):
                await r.read()
            w.close()
            await server.wait_closed()
        run(main())

    def test_serve_forever_cancel(self):
        async def main():
            server, port = await echo_server()
            task = aio.create_task(server.serve_forever())
            await aio.sleep(0.01)
            self.assertTrue(server.is_serving())
            task.cancel()
            with self.assertRaises(aio.CancelledError):
                await task
            self.assertFalse(server.is_serving())
            await server.wait_closed()
        run(main())

    def test_plain_function_callback(self):
        async def main():
            got = []

            def cb(reader, writer):
                got.append(writer.get_extra_info('peername'))
                writer.write(b'hello\n')
                writer.close()
            server, port = await echo_server(cb)
            r, w = await aio.open_connection('127.0.0.1', port)
            self.assertEqual(await r.read(), b'hello\n')
            self.assertEqual(got, [w.get_extra_info('sockname')])
            w.close()
            await w.wait_closed()
            server.close()
            await server.wait_closed()
        run(main())

    def test_plain_callback_exception_is_reported_and_serving_goes_on(self):
        # As asyncio: the exception goes to the loop's exception handler,
        # and the server serves the next client.  Unlike asyncio, which
        # leaves that connection open with nobody to read it, it is closed.
        reports = []

        async def main():
            loop = aio.get_running_loop()
            loop.set_exception_handler(lambda loop, context: reports.append(context))
            calls = []

            def cb(reader, writer):
                calls.append(writer.get_extra_info('peername'))
                if len(calls) == 1:
                    raise KeyError('from the callback')
                writer.write(b'served\n')
                writer.close()
            server, port = await echo_server(cb)
            r, w = await aio.open_connection('127.0.0.1', port)
            self.assertEqual(await aio.wait_for(r.read(), 30), b'')
            w.close()
            await w.wait_closed()
            r, w = await aio.open_connection('127.0.0.1', port)
            self.assertEqual(await aio.wait_for(r.read(), 30), b'served\n')
            w.close()
            await w.wait_closed()
            self.assertEqual(len(calls), 2)
            self.assertTrue(server.is_serving())
            server.close()
            await server.wait_closed()
        run(main())
        self.assertEqual(len(reports), 1)
        context = reports[0]
        self.assertEqual(context['message'], 'Unhandled exception in client_connected_cb')
        self.assertIsInstance(context['exception'], KeyError)
        self.assertEqual(context['exception'].args, ('from the callback',))
        self.assertIn('transport', context)

    def test_plain_callback_exception_logged_as_asyncio_logs_it(self):
        # With no handler set, both log it as an error on the 'asyncio'
        # logger, with the exception's traceback, and run() returns.
        writers = []

        def cb(reader, writer):
            writers.append(writer)
            raise KeyError('from the callback')
        for mod in (std_asyncio, aio):
            async def main():
                server = await mod.start_server(cb, '127.0.0.1', 0)
                port = server.sockets[0].getsockname()[1]
                r, w = await mod.open_connection('127.0.0.1', port)
                try:
                    await mod.wait_for(r.read(), 0.2)  # asyncio: no EOF
                except TimeoutError:
                    pass
                w.close()
                writers.pop().close()  # asyncio left it open
                server.close()
                await server.wait_closed()
                return 'returned'
            with self.subTest(mod=mod.__name__), self.assertLogs('asyncio', 'ERROR') as cm:
                self.assertEqual(mod.run(main()), 'returned')
                self.assertEqual(len(cm.records), 1)
                exc = cm.records[0].exc_info[1]
                self.assertIsInstance(exc, KeyError)
                self.assertEqual(exc.args, ('from the callback',))

    def test_plain_callback_keyboard_interrupt_and_system_exit_stop_run(self):
        # asyncio does not hand these to the exception handler either.
        for exc in (KeyboardInterrupt, SystemExit):
            async def main():
                def cb(reader, writer):
                    raise exc('from the callback')
                server, port = await echo_server(cb)
                r, w = await aio.open_connection('127.0.0.1', port)
                try:
                    await aio.sleep(30)
                finally:
                    w.close()
            with self.subTest(exc=exc.__name__), self.assertRaisesRegex(exc, 'from the callback'):
                run(main())

    def test_shutdown_cancels_handlers(self):
        async def main():
            cancelled = []

            async def handler(reader, writer):
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    cancelled.append(True)
                    raise
                finally:
                    writer.close()
            server, port = await echo_server(handler)
            r, w = await aio.open_connection('127.0.0.1', port)
            await aio.sleep(0.01)
            await server.shutdown(1.0)
            self.assertEqual(cancelled, [True])
            self.assertEqual(await r.read(), b'')
            w.close()
            await w.wait_closed()
        run(main())

    def test_address_in_use(self):
        # CPython 3.13's message, checked against it (3.11 and 3.12 leave
        # out the second "[errno 98]"; the interpreter running this may be
        # one of them, so the text is written out).
        async def main():
            server, port = await echo_server()
            want = (f"[Errno 98] error while attempting to bind on address "
                    f"('127.0.0.1', {port}): [errno 98] address already in use")
            for kw in ({'reuse_address': False}, {}):
                with self.assertRaises(OSError) as cm:
                    await aio.start_server(echo_handler, '127.0.0.1', port, **kw)
                self.assertIs(type(cm.exception), OSError)
                self.assertEqual(cm.exception.errno, 98)
                self.assertEqual(str(cm.exception), want)
            # open_connection's local address is worded the same way.
            with self.assertRaises(OSError) as cm:
                await aio.open_connection('127.0.0.1', port, local_addr=('127.0.0.1', port))
            self.assertEqual(cm.exception.errno, 98)
            self.assertEqual(str(cm.exception), want)
            server.close()
            await server.wait_closed()
        run(main())

    def test_unix_address_in_use(self):
        async def main():
            with tempfile.TemporaryDirectory() as d:
                # A directory at the path: bind() says EADDRINUSE.
                with self.assertRaises(OSError) as cm:
                    await aio.start_unix_server(echo_handler, d)
                self.assertEqual(cm.exception.errno, 98)
                self.assertEqual(str(cm.exception), f"[Errno 98] Address '{d}' is already in use")
        run(main())

    def test_port_out_of_range(self):
        async def main():
            for bad in (99999, 65536, -1, '99999'):
                for host in ('127.0.0.1', None):
                    with self.assertRaises(OverflowError) as cm:
                        await aio.start_server(echo_handler, host, bad)
                    self.assertEqual(str(cm.exception), 'bind(): port must be 0-65535.')
        run(main())

    def test_unix(self):
        async def main():
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, 'sock')
                server = await aio.start_unix_server(echo_handler, path)
                self.assertEqual(server.sockets[0].getsockname(), path)
                r, w = await aio.open_unix_connection(path)
                self.assertEqual(w.get_extra_info('peername'), path)
                w.write(b'unix\n')
                self.assertEqual(await r.readline(), b'unix\n')
                w.close()
                await w.wait_closed()
                server.close()
                await server.wait_closed()
                self.assertFalse(os.path.exists(path))
        run(main())


class Interop(unittest.TestCase):
    """asyncio (the interpreter's own) on a thread, asyncstreams on this one."""

    def _asyncio_thread(self, coro_fn):
        ready = threading.Event()
        box = {}

        def target():
            async def main():
                await coro_fn(box, ready)
            std_asyncio.run(main())
        t = threading.Thread(target=target)
        t.start()
        self.assertTrue(ready.wait(10))
        return t, box

    def test_asyncstreams_client_asyncio_server(self):
        async def serve(box, ready):
            done = std_asyncio.Event()

            async def handle(reader, writer):
                while data := await reader.read(1000):
                    writer.write(data.upper())
                    await writer.drain()
                writer.close()
                await writer.wait_closed()
                done.set()
            server = await std_asyncio.start_server(handle, '127.0.0.1', 0)
            box['port'] = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await std_asyncio.wait_for(done.wait(), 20)
        t, box = self._asyncio_thread(serve)

        async def main():
            r, w = await aio.open_connection('127.0.0.1', box['port'])
            w.write(b'hello asyncio\n')
            line = await r.readline()
            w.write_eof()
            self.assertEqual(await r.read(), b'')
            w.close()
            await w.wait_closed()
            return line
        self.assertEqual(run(main()), b'HELLO ASYNCIO\n')
        t.join(20)

    def test_asyncio_client_asyncstreams_server(self):
        result = {}

        async def main():
            server, port = await echo_server()

            def client():
                async def talk():
                    r, w = await std_asyncio.open_connection('127.0.0.1', port)
                    w.write(b'x' * 300000)
                    w.write_eof()
                    result['data'] = await r.read()
                    w.close()
                    await w.wait_closed()
                std_asyncio.run(talk())
            t = threading.Thread(target=client)
            t.start()
            while t.is_alive():
                await aio.sleep(0.01)
            t.join()
            server.close()
            await server.wait_closed()
        run(main())
        self.assertEqual(result['data'], b'x' * 300000)


class Leaks(unittest.TestCase):
    CYCLES = 10000

    def test_open_echo_close_cycles(self):
        """10,000 open/echo/close cycles: Python objects, traced memory and
        RSS stay flat, and no C object is left at the end."""
        def rss_kib():
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024

        async def cycle(port):
            r, w = await aio.open_connection('127.0.0.1', port)
            w.write(b'ping\n')
            await w.drain()
            assert await r.readline() == b'ping\n'
            w.close()
            await w.wait_closed()

        async def main():
            loop = aio.get_running_loop()
            server, port = await echo_server()
            samples = []
            tracemalloc.start()
            try:
                for i in range(self.CYCLES):
                    await cycle(port)
                    if i % 2000 == 1999:
                        while server.active_connections():
                            await aio.sleep(0.001)
                        gc.collect()
                        samples.append((len(gc.get_objects()),
                                        tracemalloc.get_traced_memory()[0], rss_kib(),
                                        loop._counts()[1]))
            finally:
                tracemalloc.stop()
            server.close()
            await server.wait_closed()
            del server
            gc.collect()
            return samples, loop

        samples, loop = run(main())
        if os.environ.get("AS_VERBOSE"):
            print(samples)
        first, last = samples[0], samples[-1]
        self.assertLessEqual(last[0] - first[0], 50, samples)        # Python objects
        self.assertLessEqual(last[1] - first[1], 64 * 1024, samples)  # traced bytes
        self.assertLessEqual(last[2] - first[2], 2048, samples)       # RSS, KiB
        self.assertEqual(last[3], first[3], samples)                  # C objects
        self.assertTrue(loop.is_closed())


if __name__ == '__main__':
    unittest.main()
