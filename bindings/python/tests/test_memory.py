"""What a connection costs after it is gone, measured against asyncio.

A reset connection leaves a reference cycle behind (the ConnectionResetError,
its traceback and the handler's frame, back to the StreamReader and
StreamWriter) that only the cycle collector frees.  asyncio has the same
cycle; here it must not cost more, so the C reader and writer give their
buffers back as soon as the connection is lost rather than when the cycle
is collected.  Each server runs in a child process of its own, with the
collector disabled, and the test compares their RSS growth over the same
number of reset clients."""
import os
import socket
import struct
import subprocess
import sys
import textwrap
import unittest

SERVER = textwrap.dedent('''
    import gc, sys
    if sys.argv[1] == 'asyncio':
        import asyncio
    else:
        import asyncstreams as asyncio

    def rss_kib():
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])

    async def handler(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line)
                await writer.drain()
        except ConnectionResetError as e:
            # The error's traceback holds this frame, which holds the
            # error: the cycle a real handler makes by keeping it.
            kept = e  # noqa: F841
        writer.close()

    async def control(reader, writer):
        while await reader.readline():
            writer.write(b'%d\\n' % rss_kib())
            await writer.drain()

    async def main():
        gc.disable()
        srv = await asyncio.start_server(handler, '127.0.0.1', 0)
        ctl = await asyncio.start_server(control, '127.0.0.1', 0)
        print(srv.sockets[0].getsockname()[1], ctl.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
''')


def reset_clients(port, n):
    line = b'x' * 30000 + b'\n'
    for _ in range(n):
        s = socket.create_connection(('127.0.0.1', port))
        s.sendall(line)
        got = b''
        while len(got) < len(line):
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError('server closed before echoing')
            got += chunk
        assert got == line
        # SO_LINGER 0: close() sends RST, the server's read fails with
        # ConnectionResetError.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()


class ResetClientsCostWhatAsyncioCosts(unittest.TestCase):
    N = 3000

    def growth(self, which):
        env = dict(os.environ)
        # Under AddressSanitizer freed memory waits in a quarantine, which
        # RSS would count as ours: no quarantine for this measurement.
        env['ASAN_OPTIONS'] = env.get('ASAN_OPTIONS', '') + ':quarantine_size_mb=0'
        p = subprocess.Popen([sys.executable, '-c', SERVER, which], env=env,
                             stdout=subprocess.PIPE)
        try:
            port, ctl_port = map(int, p.stdout.readline().split())
            ctl = socket.create_connection(('127.0.0.1', ctl_port))
            f = ctl.makefile('rwb')

            def rss():
                f.write(b'?\n')
                f.flush()
                return int(f.readline())
            reset_clients(port, 200)          # warm up: caches, arenas
            before = rss()
            reset_clients(port, self.N)
            after = rss()
            f.close()
            ctl.close()
            return after - before
        finally:
            p.kill()
            p.wait()
            p.stdout.close()

    @unittest.skipUnless(os.path.exists('/proc/self/status'), 'needs /proc for RSS')
    def test_rss_growth_within_one_and_a_half_asyncios(self):
        ours = self.growth('asyncstreams')
        theirs = self.growth('asyncio')
        print(f'RSS growth over {self.N} reset clients: asyncstreams {ours} KiB, '
              f'asyncio {theirs} KiB', file=sys.stderr)
        # The aim is "within 2x"; 1.5x is asserted, because before the fix
        # this run measured 1.9x (30 KB lines) and after it 0.9x.
        self.assertLessEqual(ours, 1.5 * max(theirs, 1024),
                             f'asyncstreams grew {ours} KiB, asyncio {theirs} KiB')


if __name__ == '__main__':
    unittest.main()
