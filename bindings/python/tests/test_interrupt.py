"""run() and KeyboardInterrupt and SystemExit, as asyncio.run() (issue 11,
item 2): raised in a task, they come out of run() after it has cancelled
the remaining tasks and run their cleanup."""
import asyncio
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


if __name__ == '__main__':
    unittest.main()
