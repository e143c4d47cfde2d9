"""StreamReader fed by hand: every case of CPython's test_streams.py reader
tests, run on asyncio.StreamReader and asyncstreams.StreamReader with the
same inputs; results, exceptions (type, message, partial, expected,
consumed) and the buffer left behind must be identical."""
import asyncio
import unittest

import asyncstreams
from pyutil import HAVE_313, both, rec

DATA = b'line1\nline2\nline3\n'


def later(mod, fn, *args):
    mod.get_running_loop().call_soon(fn, *args)


class Same(unittest.TestCase):
    def same(self, scenario, limit=None):
        a, b = both(scenario, limit)
        self.assertEqual(a, b)
        return b

    # ---------------------------------------------------------- feed / read
    def test_feed_empty_and_nonempty(self):
        async def s(mod, r, log):
            r.feed_data(b'')
            log.append(bytes(r._buffer))
            r.feed_data(DATA)
            log.append(bytes(r._buffer))
        self.assertEqual(self.same(s)[1], DATA)

    def test_read_waits_then_returns_what_came(self):
        async def s(mod, r, log):
            later(mod, r.feed_data, DATA)
            await rec(log, r.read(30))
        self.assertEqual(self.same(s)[0], ('ok', DATA))

    def test_read_zero_leaves_buffer(self):
        async def s(mod, r, log):
            r.feed_data(DATA)
            await rec(log, r.read(0))
        self.assertEqual(self.same(s)[0], ('ok', b''))

    def test_read_line_breaks_two_chunks(self):
        async def s(mod, r, log):
            r.feed_data(b'line1')
            r.feed_data(b'line2')
            await rec(log, r.read(5))
        self.same(s)

    def test_read_eof_and_until_eof(self):
        async def s(mod, r, log):
            later(mod, r.feed_eof)
            await rec(log, r.read(1024))
            await rec(log, r.read())
            await rec(log, r.readline())
        self.same(s)

        async def s2(mod, r, log):
            def feed():
                r.feed_data(b'chunk1\n')
                r.feed_data(b'chunk2')
                r.feed_eof()
            later(mod, feed)
            await rec(log, r.read(-1))
        self.assertEqual(self.same(s2)[0], ('ok', b'chunk1\nchunk2'))

    def test_read_exception_even_with_data(self):
        async def s(mod, r, log):
            r.feed_data(b'line\n')
            await rec(log, r.read(2))
            exc = ValueError('boom')
            r.set_exception(exc)
            await rec(log, r.read(2))
            await rec(log, r.read(0))
            log.append(r.exception() is exc)
            try:
                await r.readline()
            except ValueError as e:
                log.append(e is exc)
        self.same(s)

    def test_invalid_limit(self):
        for mod in (asyncio, asyncstreams):
            async def main():
                for bad in (0, -1):
                    with self.assertRaisesRegex(ValueError, 'imit'):
                        mod.StreamReader(limit=bad)
            mod.run(main())

    def test_read_limit_not_capped(self):
        async def s(mod, r, log):
            r.feed_data(b'chunk')
            await rec(log, r.read(5))
        self.same(s, limit=3)

    # ---------------------------------------------------------- readline
    def test_readline_across_chunks(self):
        async def s(mod, r, log):
            r.feed_data(b'chunk1 ')

            def feed():
                r.feed_data(b'chunk2 ')
                r.feed_data(b'chunk3 ')
                r.feed_data(b'\n chunk4')
            later(mod, feed)
            await rec(log, r.readline())
        self.assertEqual(self.same(s)[-1][1], b' chunk4')

    def test_readline_limit_with_existing_data(self):
        async def s(mod, r, log):
            r.feed_data(b'li')
            r.feed_data(b'ne1\nline2\n')
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
        self.assertEqual(self.same(s, limit=3)[1], b'line2\n')

        async def s2(mod, r, log):
            r.feed_data(b'li')
            r.feed_data(b'ne1')
            r.feed_data(b'li')
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
        self.assertEqual(self.same(s2, limit=3)[1], b'')

    def test_at_eof(self):
        async def s(mod, r, log):
            log.append(r.at_eof())
            r.feed_data(b'some data\n')
            log.append(r.at_eof())
            await r.readline()
            log.append(r.at_eof())
            r.feed_data(b'some data\n')
            r.feed_eof()
            await r.readline()
            log.append(r.at_eof())
        self.same(s)

    def test_readline_limit(self):
        async def s(mod, r, log):
            def feed():
                r.feed_data(b'chunk1')
                r.feed_data(b'chunk2')
                r.feed_data(b'chunk3\n')
                r.feed_eof()
            later(mod, feed)
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
        self.same(s, limit=7)

        async def s2(mod, r, log):
            def feed():
                r.feed_data(b'chunk1')
                r.feed_data(b'chunk2\n')
                r.feed_data(b'chunk3\n')
                r.feed_eof()
            later(mod, feed)
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
        self.assertEqual(self.same(s2, limit=7)[1], b'chunk3\n')

        async def s3(mod, r, log):
            r.feed_data(b'1234567\n')
            await rec(log, r.readline())
            r.feed_data(b'12345678\n')
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
            r.feed_data(b'12345678')
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
            r.feed_data(b'1234567\n12345678\nX')
            await rec(log, r.readline())
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
        self.same(s3, limit=7)

    def test_readline_nowait_eof_empty_and_byte_count(self):
        async def s(mod, r, log):
            r.feed_data(DATA[:6])
            r.feed_data(DATA[6:])
            await rec(log, r.readline())
            await rec(log, r.read(7))
            r.feed_data(b'some data')
            r.feed_eof()
            await rec(log, r.readline())
            await rec(log, r.readline())
        self.same(s)

    def test_readline_exception(self):
        async def s(mod, r, log):
            r.feed_data(b'line\n')
            await rec(log, r.readline())
            r.set_exception(ValueError())
            await rec(log, r.readline())
            log.append(bytes(r._buffer))
        self.same(s)

    def test_readline_partial_cr_at_eof(self):
        async def s(mod, r, log):
            r.feed_data(b'ab\r')
            r.feed_eof()
            await rec(log, r.readline())
        self.same(s)

    # ---------------------------------------------------------- readuntil
    def test_readuntil_separator_validation(self):
        async def s(mod, r, log):
            await rec(log, r.readuntil(b''))
            r.set_exception(RuntimeError('x'))
            await rec(log, r.readuntil(b''))  # validation before the exception
        self.same(s)
        # Tuple separators are 3.13's: compare with the verified 3.13 text.
        for sep, msg in (((b'',), 'Separator should be at least one-byte string'),
                         ((), 'Separator should contain at least one element')):
            async def main():
                r = asyncstreams.StreamReader()
                with self.assertRaises(ValueError) as cm:
                    await r.readuntil(sep)
                self.assertEqual(str(cm.exception), msg)
            asyncstreams.run(main())

    def test_readuntil_multi_chunks(self):
        async def s(mod, r, log):
            r.feed_data(b'lineAAA')
            await rec(log, r.readuntil(separator=b'AAA'))
            r.feed_data(b'lineAAAxxx')
            await rec(log, r.readuntil(separator=b'AAA'))
            log.append(bytes(r._buffer))
        self.same(s)

    def test_readuntil_multi_chunks_1(self):
        async def s(mod, r, log):
            r.feed_data(b'QWEaa')
            r.feed_data(b'XYaa')
            r.feed_data(b'a')
            await rec(log, r.readuntil(b'aaa'))
            r.feed_data(b'QWEaa')
            r.feed_data(b'XYa')
            r.feed_data(b'aa')
            await rec(log, r.readuntil(b'aaa'))
            r.feed_data(b'aaa')
            await rec(log, r.readuntil(b'aaa'))
            r.feed_data(b'Xaaa')
            await rec(log, r.readuntil(b'aaa'))
            r.feed_data(b'XXX')
            r.feed_data(b'a')
            r.feed_data(b'a')
            r.feed_data(b'a')
            await rec(log, r.readuntil(b'aaa'))
        self.same(s)

    def test_readuntil_eof(self):
        async def s(mod, r, log):
            r.feed_data(b'some dataAA')
            r.feed_eof()
            await rec(log, r.readuntil(b'AAA'))
        log = self.same(s)
        self.assertEqual(log[0][1]['str'], '11 bytes read on a total of undefined expected bytes')
        self.assertIsNone(log[0][1]['expected'])

    def test_readuntil_limit_found_sep(self):
        async def s(mod, r, log):
            r.feed_data(b'some dataAA')
            await rec(log, r.readuntil(b'AAA'))
            log.append(bytes(r._buffer))
            r.feed_data(b'A')
            await rec(log, r.readuntil(b'AAA'))
            log.append(bytes(r._buffer))
        log = self.same(s, limit=3)
        self.assertEqual(log[0][1]['consumed'], 9)

    def test_readuntil_one_byte_limit(self):
        async def s(mod, r, log):
            r.feed_data(b'abc')
            later(mod, r.feed_data, b'd')
            await rec(log, r.readuntil(b'\n'))
        self.same(s, limit=3)

    def test_readuntil_separator_already_buffered_after_eof(self):
        async def s(mod, r, log):
            r.feed_data(b'a\nb')
            r.feed_eof()
            await rec(log, r.readuntil(b'\n'))
            await rec(log, r.readuntil(b'\n'))
            log.append(r.at_eof())
        self.same(s)

    def test_readuntil_bytearray_and_list(self):
        async def s(mod, r, log):
            r.feed_data(b'some data\r\n')
            await rec(log, r.readuntil(bytearray(b'\r\n')))
            r.feed_data(b'x\n')
            try:
                await r.readuntil([b'\n'])
            except TypeError:
                log.append('TypeError')
        self.same(s)

    def test_readuntil_multi_separator(self):
        async def s(mod, r, log):
            r.feed_data(b'line 1\nline 2\r')
            await rec(log, r.readuntil((b'\r', b'\n')))
            await rec(log, r.readuntil((b'\r', b'\n')))
            r.feed_data(b'ABCDEFG')
            await rec(log, r.readuntil((b'DEF', b'BCDE')))
            log.append(bytes(r._buffer))
            r.feed_data(b'xxab')
            await rec(log, r.readuntil((b'ab', b'b')))
        if HAVE_313:
            self.same(s)
            return
        # asyncio < 3.13 has no tuple separators: below are the values
        # CPython 3.13 gives, which the branch above compares against 3.13
        # itself wherever it is installed.
        log = []

        async def main():
            r = asyncstreams.StreamReader()
            await s(asyncstreams, r, log)
        asyncstreams.run(main())
        self.assertEqual(log, [('ok', b'line 1\n'), ('ok', b'line 2\r'),
                               ('ok', b'ABCDE'), b'FG', ('ok', b'FGxxab')])

    def test_readuntil_multi_separator_limit_and_negative_offset(self):
        log = []

        async def main():
            r = asyncstreams.StreamReader(limit=3)
            r.feed_data(b'some dataA')
            await rec(log, r.readuntil((b'A', b'ome dataA')))
            r2 = asyncstreams.StreamReader()
            r2.feed_data(b'data')
            r2.feed_data(b'ZAaaa')
            await rec(log, r2.readuntil((b'A', b'ZA')))
            log.append(bytes(r2._buffer))
        asyncstreams.run(main())
        self.assertEqual(log[0][1]['str'], 'Separator is found, but chunk is longer than limit')
        self.assertEqual(log[1:], [('ok', b'dataZA'), b'aaa'])

    # ---------------------------------------------------------- readexactly
    def test_readexactly_zero_or_less(self):
        async def s(mod, r, log):
            r.feed_data(DATA)
            await rec(log, r.readexactly(0))
            await rec(log, r.readexactly(-1))
            log.append(bytes(r._buffer))
            r.set_exception(RuntimeError())
            await rec(log, r.readexactly(-1))  # ValueError first
        self.same(s)

    def test_readexactly(self):
        async def s(mod, r, log):
            def feed():
                r.feed_data(DATA)
                r.feed_data(DATA)
                r.feed_data(DATA)
            later(mod, feed)
            await rec(log, r.readexactly(2 * len(DATA)))
            log.append(bytes(r._buffer))
        self.same(s)

    def test_readexactly_limit(self):
        async def s(mod, r, log):
            r.feed_data(b'chunk')
            await rec(log, r.readexactly(5))
        self.same(s, limit=3)

    def test_readexactly_eof(self):
        async def s(mod, r, log):
            def feed():
                r.feed_data(DATA)
                r.feed_eof()
            later(mod, feed)
            await rec(log, r.readexactly(2 * len(DATA)))
            log.append(bytes(r._buffer))
        log = self.same(s)
        self.assertEqual(log[0][1]['str'], '18 bytes read on a total of 36 expected bytes')
        self.assertEqual(log[0][1]['partial'], DATA)
        self.assertEqual(log[0][1]['expected'], 36)

    def test_readexactly_exception(self):
        async def s(mod, r, log):
            r.feed_data(b'line\n')
            await rec(log, r.readexactly(2))
            r.set_exception(ValueError())
            await rec(log, r.readexactly(2))
        self.same(s)

    # ---------------------------------------------------------- exception
    def test_exception_waiter(self):
        async def s(mod, r, log):
            exc = ValueError('w')
            later(mod, r.set_exception, exc)
            try:
                await r.readline()
            except ValueError as e:
                log.append(e is exc)
        self.assertEqual(self.same(s), [True, ('buffer', b'', False)])

    def test_exception_cancel(self):
        async def s(mod, r, log):
            t = mod.create_task(r.readline())
            await mod.sleep(0)
            t.cancel()
            await mod.sleep(0)
            r.set_exception(RuntimeError('message'))
            await mod.sleep(0)
            log.append(t.cancelled())
        self.same(s)

    def test_cancelled_read_consumes_nothing(self):
        async def s(mod, r, log):
            r.feed_data(b'ab')
            t = mod.create_task(r.readline())
            await mod.sleep(0)
            t.cancel()
            await rec(log, t)
            r.feed_data(b'c\n')
            await rec(log, r.readline())
        self.same(s)

    def test_second_waiting_reader_is_refused(self):
        async def s(mod, r, log):
            t = mod.create_task(r.read(5))
            await mod.sleep(0)
            await rec(log, r.readline())
            await rec(log, r.readexactly(3))
            r.feed_data(b'xyz')
            await rec(log, t)
        self.same(s)

    def test_feed_data_after_eof_asserts(self):
        async def s(mod, r, log):
            r.feed_eof()
            try:
                r.feed_data(b'x')
            except AssertionError as e:
                log.append(str(e))
        self.assertEqual(self.same(s)[0], 'feed_data after feed_eof')

    # ---------------------------------------------------------- iteration
    def test_async_for(self):
        async def s(mod, r, log):
            r.feed_data(b'a\nb\nc')
            r.feed_eof()
            async for line in r:
                log.append(line)
        self.assertEqual(self.same(s)[:3], [b'a\n', b'b\n', b'c'])

    def test_async_for_error_propagates(self):
        async def s(mod, r, log):
            r.feed_data(b'a\n123456789\n')
            try:
                async for line in r:
                    log.append(line)
            except ValueError as e:
                log.append(str(e))
        self.same(s, limit=4)

    def test_chunking_does_not_change_results(self):
        data = b'alpha\nbeta\r\ngamma\n' * 3 + b'tail'
        async def s(mod, r, log, step):
            for i in range(0, len(data), step):
                later(mod, r.feed_data, data[i:i + step])
            later(mod, r.feed_eof)
            await rec(log, r.readuntil(b'\r\n'))
            await rec(log, r.readexactly(4))
            while True:
                line = await r.readline()
                log.append(line)
                if not line:
                    break
        for step in (1, 2, 5, 64):
            self.same(lambda m, r, l, step=step: s(m, r, l, step))


class Extras(unittest.TestCase):
    """The C reader's extra calls, which asyncio does not have."""

    def test_discard_until_resyncs_after_overrun(self):
        async def main():
            r = asyncstreams.StreamReader(limit=16)
            r.feed_data(b'x' * 200 + b'\nok\n')
            with self.assertRaises(asyncstreams.LimitOverrunError) as cm:
                await r.readuntil(b'\n')
            self.assertEqual(cm.exception.consumed, 200)
            self.assertEqual(r.peek()[:3], b'xxx')  # nothing lost
            self.assertEqual(await r.discard_until(b'\n'), (201, 0))
            self.assertEqual(await r.readline(), b'ok\n')
            r.feed_data(b'junk')
            r.feed_eof()
            with self.assertRaises(asyncstreams.IncompleteReadError):
                await r.discard_until((b'\r\n', b'\n'))
        asyncstreams.run(main())

    def test_readuntil_ex_and_readline_limit(self):
        async def main():
            r = asyncstreams.StreamReader(limit=4)
            r.feed_data(b'0123456789\n')
            self.assertEqual(await r.readline_limit(100), b'0123456789\n')
            r.feed_data(b'abcdef;')
            with self.assertRaises(asyncstreams.LimitOverrunError):
                await r.readuntil_ex(b';', 2)
            self.assertEqual(await r.readuntil_ex(b';', 10), b'abcdef;')
            self.assertEqual(r.buffered(), 0)
        asyncstreams.run(main())

    def test_reader_needs_a_running_loop(self):
        with self.assertRaisesRegex(RuntimeError, 'no current event loop'):
            asyncstreams.StreamReader()


class Leaks(unittest.TestCase):
    """Many reads, errors and cancellations leave nothing behind: Python
    object counts are flat and the C loop holds no objects."""

    def test_read_paths_do_not_leak(self):
        import gc

        async def cycle(r):
            r.feed_data(b'line\nabc')
            await r.readline()
            await r.readexactly(1)
            try:
                await r.readexactly(-1)
            except ValueError:
                pass
            t = asyncstreams.create_task(r.readline())
            await asyncstreams.sleep(0)
            t.cancel()
            try:
                await t
            except asyncstreams.CancelledError:
                pass
            r.feed_data(b'\n')
            await r.readline()

        async def main(n):
            loop = asyncstreams.get_running_loop()
            for _ in range(n):
                r = asyncstreams.StreamReader()
                await cycle(r)
                r.feed_eof()
                try:
                    await r.readexactly(5)
                except asyncstreams.IncompleteReadError:
                    pass
                del r
            gc.collect()
            # The callback running this step holds the last awaited C
            # future until it returns: let one turn pass before counting.
            await asyncstreams.sleep(0)
            return len(gc.get_objects()), loop._counts()

        asyncstreams.run(main(200))  # warm up caches
        before, _ = asyncstreams.run(main(10))
        after, counts = asyncstreams.run(main(3000))
        self.assertLess(after - before, 100)
        self.assertEqual(counts[1], 1)  # only the main task's own future


if __name__ == '__main__':
    unittest.main()
