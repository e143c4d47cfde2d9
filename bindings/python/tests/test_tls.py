"""TLS in the binding against real asyncio TLS peers (the same interpreter's
asyncio, on a thread of its own), with certificates from tests/tls_certs.sh.
Where asyncio defines the outcome, the same scenario runs on asyncio and on
asyncstreams and the two outcomes must be equal."""
import asyncio
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

import asyncstreams
from pyutil import outcome

SRCDIR = os.environ.get('AS_SRCDIR') or os.path.join(os.path.dirname(__file__), '..', '..', '..')
CERTS = None
_tmp = None


def setUpModule():
    global CERTS, _tmp
    _tmp = tempfile.TemporaryDirectory()
    CERTS = os.path.join(_tmp.name, 'certs')
    subprocess.run(['sh', os.path.join(SRCDIR, 'tests', 'tls_certs.sh'), CERTS],
                   check=True, capture_output=True, timeout=120)


def tearDownModule():
    _tmp.cleanup()


def cert(name):
    return os.path.join(CERTS, name)


def server_ctx(name='server', client_ca=False):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert(name + '.pem'), cert(name + '.key'))
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cert('ca.pem'))
    return ctx


def client_ctx(client_cert=False):
    ctx = ssl.create_default_context(cafile=cert('ca.pem'))
    if client_cert:
        ctx.load_cert_chain(cert('client.pem'), cert('client.key'))
    return ctx


class Peer:
    """An asyncio loop on a thread: the other end of the connection."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.loop.set_debug(False)  # -X dev: no logs of the handshakes we fail on purpose
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def echo_line(reader, writer):
    """The asyncio server's handler: one line back, with what it saw."""
    try:
        line = await reader.readline()
        cn = writer.get_extra_info('peercert')
        who = dict(x[0] for x in cn['subject'])['commonName'].encode() if cn else b'-'
        writer.write(b'echo ' + who + b' ' + line)
        await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.close()


class TLSPeerTest(unittest.TestCase):
    def setUp(self):
        self.peer = Peer()
        self.servers = []

    def tearDown(self):
        # Closed on the peer's own loop: asyncio's Server is not
        # thread-safe, and a close() from this thread raced a connection
        # detaching on the loop's thread (both woke the waiters: TypeError).
        async def close(s):
            s.close()
            await s.wait_closed()
        for s in self.servers:
            self.peer.run(close(s))
        self.peer.close()

    def asyncio_server(self, ctx, handler=echo_line):
        async def start():
            return await asyncio.start_server(handler, '127.0.0.1', 0, ssl=ctx)
        s = self.peer.run(start())
        self.servers.append(s)
        return s.sockets[0].getsockname()[1]

    def on_both(self, scenario):
        """scenario(mod) on asyncio and on asyncstreams: (theirs, ours)."""
        res = []
        for mod in (asyncio, asyncstreams):
            log = []

            async def main():
                try:
                    log.append(('ok', await scenario(mod)))
                except Exception as e:  # noqa: B902 - the outcome is compared
                    log.append(outcome(e))
                    log.append(('class', type(e).__mro__[:3],
                                getattr(e, 'verify_message', None)))
            mod.run(main(), debug=False)  # no slow-callback notes under -X dev
            res.append(log)
        return res


class Client(TLSPeerTest):
    def test_client_to_asyncio_server_and_extra_info(self):
        port = self.asyncio_server(server_ctx())
        ctx = client_ctx()

        async def main():
            r, w = await asyncstreams.open_connection('127.0.0.1', port, ssl=ctx,
                                                      server_hostname='localhost')
            self.assertIsInstance(w.get_extra_info('ssl_object'), ssl.SSLObject)
            self.assertIs(w.get_extra_info('sslcontext'), ctx)
            self.assertEqual(w.get_extra_info('peercert')['subject'],
                             ((('commonName', 'localhost'),),))
            name, version, bits = w.get_extra_info('cipher')
            self.assertEqual(version, 'TLSv1.3')
            self.assertIsNone(w.get_extra_info('compression'))
            self.assertEqual(w.get_extra_info('peername')[1], port)
            self.assertFalse(w.can_write_eof())
            w.write(b'hello over tls\n')
            await w.drain()
            self.assertEqual(await r.readline(), b'echo - hello over tls\n')
            self.assertEqual(await r.read(), b'')  # close_notify is EOF
            w.close()
            await w.wait_closed()
        asyncstreams.run(main())

    def test_ssl_true_is_the_default_context(self):
        port = self.asyncio_server(server_ctx())

        async def scenario(mod):
            # The system's trust store does not know the test CA.
            await mod.open_connection('localhost', port, ssl=True)
        theirs, ours = self.on_both(scenario)
        self.assertEqual(ours, theirs)
        self.assertEqual(ours[1][0], 'class')
        self.assertIs(ours[1][1][0], ssl.SSLCertVerificationError)
        self.assertEqual(ours[1][2], 'unable to get local issuer certificate')

    def test_self_signed_and_wrong_host_fail_verification(self):
        port_self = self.asyncio_server(server_ctx('self'))
        port = self.asyncio_server(server_ctx())
        ctx = client_ctx()
        for p, host, why in ((port_self, 'localhost', 'self-signed certificate'),
                             (port, 'wrong.example', "Hostname mismatch, certificate is "
                                                     "not valid for 'wrong.example'.")):
            async def scenario(mod, p=p, host=host):
                await mod.open_connection('127.0.0.1', p, ssl=ctx, server_hostname=host)
            theirs, ours = self.on_both(scenario)
            self.assertEqual(ours, theirs)
            self.assertIs(ours[1][1][0], ssl.SSLCertVerificationError)
            self.assertEqual(ours[1][2], why)

    def test_mutual_tls(self):
        port = self.asyncio_server(server_ctx(client_ca=True))

        async def with_cert(mod):
            r, w = await mod.open_connection('127.0.0.1', port, ssl=client_ctx(True),
                                             server_hostname='localhost')
            w.write(b'hi\n')
            line = await r.readline()
            w.close()
            await w.wait_closed()
            return line
        theirs, ours = self.on_both(with_cert)
        self.assertEqual(ours, [('ok', b'echo test client hi\n')])
        self.assertEqual(ours, theirs)

        async def without_cert(mod):
            # TLS 1.3: the client's handshake ends first; the server
            # refuses it after, and the client reads EOF, as on asyncio.
            r, w = await mod.open_connection('127.0.0.1', port, ssl=client_ctx(),
                                             server_hostname='localhost')
            try:
                w.write(b'hi\n')
                return await r.readline()
            except ConnectionResetError:
                # The same refusal when our b'hi' reached the server after
                # it closed: its kernel answers with a reset (seen in CI,
                # timing, on asyncio and on us alike).
                return b''
            finally:
                w.close()
        theirs, ours = self.on_both(without_cert)
        self.assertEqual(ours, theirs)
        self.assertEqual(ours, [('ok', b'')])  # the server's alert ends the stream

    def test_alpn(self):
        sctx = server_ctx()
        sctx.set_alpn_protocols(['h2', 'http/1.1'])
        port = self.asyncio_server(sctx)

        async def main():
            ctx = client_ctx()
            ctx.set_alpn_protocols(['http/1.1', 'h2'])
            r, w = await asyncstreams.open_connection('127.0.0.1', port, ssl=ctx,
                                                      server_hostname='localhost')
            self.assertEqual(w.get_extra_info('ssl_object').selected_alpn_protocol(), 'h2')
            w.close()
            await w.wait_closed()
        asyncstreams.run(main())

    def test_handshake_timeout_against_a_silent_server(self):
        lsock = socket.socket()
        lsock.bind(('127.0.0.1', 0))
        lsock.listen()
        port = lsock.getsockname()[1]
        try:
            async def scenario(mod):
                await mod.open_connection('127.0.0.1', port, ssl=client_ctx(),
                                          server_hostname='localhost',
                                          ssl_handshake_timeout=0.3)
            theirs, ours = self.on_both(scenario)
        finally:
            lsock.close()
        self.assertEqual(ours, theirs)
        self.assertIn('SSL handshake is taking longer than 0.3 seconds', ours[0][1]['str'])

    def test_start_tls_on_a_plain_connection(self):
        async def starttls_server(reader, writer):
            line = await reader.readline()
            writer.write(b'go ahead ' + line)
            await writer.drain()
            await writer.start_tls(server_ctx())
            await echo_line(reader, writer)

        async def start():
            return await asyncio.start_server(starttls_server, '127.0.0.1', 0)
        s = self.peer.run(start())
        self.servers.append(s)
        port = s.sockets[0].getsockname()[1]

        async def scenario(mod):
            r, w = await mod.open_connection('127.0.0.1', port)
            w.write(b'STARTTLS\n')
            got = [await r.readline()]
            await w.start_tls(client_ctx(), server_hostname='localhost')
            got.append(w.get_extra_info('cipher')[1])
            w.write(b'secret\n')
            got.append(await r.readline())
            w.close()
            return got
        theirs, ours = self.on_both(scenario)
        self.assertEqual(ours, [('ok', [b'go ahead STARTTLS\n', 'TLSv1.3', b'echo - secret\n'])])
        self.assertEqual(ours, theirs)

    def test_unix_connection(self):
        path = os.path.join(_tmp.name, 'tls.sock')

        async def start():
            return await asyncio.start_unix_server(echo_line, path, ssl=server_ctx())
        self.servers.append(self.peer.run(start()))

        async def scenario(mod):
            r, w = await mod.open_unix_connection(path, ssl=client_ctx(),
                                                  server_hostname='localhost')
            w.write(b'unix\n')
            line = await r.readline()
            w.close()
            return line
        theirs, ours = self.on_both(scenario)
        self.assertEqual(ours, [('ok', b'echo - unix\n')])
        self.assertEqual(ours, theirs)


class Server(TLSPeerTest):
    def serve(self, start, check):
        """Our server (start(handler) -> Server) on the main thread, an asyncio
        client check(port or path) on the peer's."""
        seen = []

        async def handler(reader, writer):
            seen.append((writer.get_extra_info('cipher')[1],
                         writer.get_extra_info('peercert')))
            await echo_line(reader, writer)

        async def main():
            srv = await start(handler)
            loop = asyncstreams.get_running_loop()
            fut = asyncio.run_coroutine_threadsafe(check(srv), self.peer.loop)
            while not fut.done():
                await asyncstreams.sleep(0.01)
            srv.close()
            await srv.wait_closed()
            self.assertIs(loop, asyncstreams.get_running_loop())
            return fut.result()
        return asyncstreams.run(main()), seen

    def test_asyncio_client_to_our_server_with_mutual_tls(self):
        async def start(handler):
            return await asyncstreams.start_server(handler, '127.0.0.1', 0,
                                                   ssl=server_ctx(client_ca=True))

        async def check(srv):
            port = srv.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection('127.0.0.1', port, ssl=client_ctx(True),
                                                 server_hostname='localhost')
            w.write(b'from asyncio\n')
            line = await r.readline()
            eof = await r.read()
            w.close()
            await w.wait_closed()
            return line, eof
        (line, eof), seen = self.serve(start, check)
        self.assertEqual(line, b'echo test client from asyncio\n')
        self.assertEqual(eof, b'')
        self.assertEqual(seen[0][0], 'TLSv1.3')
        self.assertEqual(seen[0][1]['subject'], ((('commonName', 'test client'),),))

    def test_a_failed_handshake_never_reaches_the_handler(self):
        async def start(handler):
            return await asyncstreams.start_server(handler, '127.0.0.1', 0, ssl=server_ctx())

        async def check(srv):
            port = srv.sockets[0].getsockname()[1]
            try:
                await asyncio.open_connection('127.0.0.1', port, ssl=client_ctx(),
                                              server_hostname='wrong.example')
            except ssl.SSLCertVerificationError as e:
                first = e.verify_message
            r, w = await asyncio.open_connection('127.0.0.1', port, ssl=client_ctx(),
                                                 server_hostname='localhost')
            w.write(b'second\n')
            line = await r.readline()
            w.close()
            return first, line
        (first, line), seen = self.serve(start, check)
        self.assertEqual(first, "Hostname mismatch, certificate is not valid for "
                                "'wrong.example'.")
        self.assertEqual(line, b'echo - second\n')
        self.assertEqual(len(seen), 1)

    def test_unix_server(self):
        path = os.path.join(_tmp.name, 'ours.sock')

        async def start(handler):
            return await asyncstreams.start_unix_server(handler, path, ssl=server_ctx())

        async def check(srv):
            r, w = await asyncio.open_unix_connection(path, ssl=client_ctx(),
                                                      server_hostname='localhost')
            w.write(b'unix\n')
            line = await r.readline()
            w.close()
            return line
        line, seen = self.serve(start, check)
        self.assertEqual(line, b'echo - unix\n')
        self.assertEqual(seen, [('TLSv1.3', None)])

    def test_server_side_start_tls(self):
        async def start(handler):
            async def starttls(reader, writer):
                self.assertEqual(await reader.readline(), b'STARTTLS\n')
                writer.write(b'ok\n')
                await writer.start_tls(server_ctx())
                await handler(reader, writer)
            return await asyncstreams.start_server(starttls, '127.0.0.1', 0)

        async def check(srv):
            port = srv.sockets[0].getsockname()[1]
            r, w = await asyncio.open_connection('127.0.0.1', port)
            w.write(b'STARTTLS\n')
            first = await r.readline()
            await w.start_tls(client_ctx(), server_hostname='localhost')
            w.write(b'upgraded\n')
            line = await r.readline()
            w.close()
            return first, line
        (first, line), seen = self.serve(start, check)
        self.assertEqual((first, line), (b'ok\n', b'echo - upgraded\n'))
        self.assertEqual(seen, [('TLSv1.3', None)])


class Arguments(unittest.TestCase):
    def test_the_same_refusals_as_asyncio(self):
        calls = [
            lambda m: m.open_connection('127.0.0.1', 1, server_hostname='x'),
            lambda m: m.open_connection('127.0.0.1', 1, ssl_handshake_timeout=1),
            lambda m: m.open_connection('127.0.0.1', 1, ssl_shutdown_timeout=1),
            lambda m: m.open_connection(None, 1, ssl=True),
            lambda m: m.open_unix_connection('/nonexistent', ssl=True),
            lambda m: m.open_unix_connection('/nonexistent', server_hostname='x'),
            lambda m: m.start_server(print, '127.0.0.1', 0, ssl=True),
            lambda m: m.start_server(print, '127.0.0.1', 0, ssl_handshake_timeout=1),
            lambda m: m.start_unix_server(print, '/nonexistent/x', ssl=False),
        ]
        for call in calls:
            log = []
            for mod in (asyncio, asyncstreams):
                async def main(mod=mod):
                    try:
                        await call(mod)
                    except Exception as e:  # noqa: B902
                        log.append(outcome(e))
                mod.run(main())
            self.assertEqual(log[0], log[1])
            self.assertEqual(len(log), 2)

    def test_start_tls_wants_a_context(self):
        async def main(mod):
            lsock = socket.socket()
            lsock.bind(('127.0.0.1', 0))
            lsock.listen()
            try:
                r, w = await mod.open_connection('127.0.0.1', lsock.getsockname()[1])
                try:
                    await w.start_tls(True)
                except TypeError as e:
                    return str(e)
                finally:
                    w.close()
            finally:
                lsock.close()
        self.assertEqual(asyncstreams.run(main(asyncstreams)), asyncio.run(main(asyncio)))


class Example(TLSPeerTest):
    def test_https_status_runs_unchanged_but_for_the_import(self):
        async def http(reader, writer):
            await reader.readuntil(b'\r\n\r\n')
            writer.write(b'HTTP/1.1 204 No Content\r\n\r\n')
            await writer.drain()
            writer.close()
        port = self.asyncio_server(server_ctx(), http)
        path = os.path.join(SRCDIR, 'examples', 'https_status.py')
        with open(path) as f:
            text = f.read()
        ported = os.path.join(_tmp.name, 'https_status.py')
        with open(ported, 'w') as f:
            f.write(text.replace('import asyncstreams as asyncio\n', 'import asyncio\n'))
        env = dict(os.environ, SSL_CERT_FILE=cert('ca.pem'))
        outs = []
        for p in (path, ported):
            r = subprocess.run([os.sys.executable, p, 'localhost', str(port)], env=env,
                               capture_output=True, text=True, timeout=60)
            outs.append((r.returncode, r.stdout, r.stderr))
        self.assertEqual(outs[0], (0, 'localhost: HTTP/1.1 204 No Content\n', ''))
        self.assertEqual(outs[0], outs[1])


if __name__ == '__main__':
    unittest.main()
