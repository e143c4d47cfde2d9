"""gather, wait_for, sleep, Semaphore, Event: asyncio's behaviour."""
import time
import unittest

import asyncstreams as aio


class Sleep(unittest.TestCase):
    def test_sleep_result_and_duration(self):
        async def main():
            t0 = aio.get_running_loop().time()
            self.assertEqual(await aio.sleep(0.05, 'r'), 'r')
            return aio.get_running_loop().time() - t0
        self.assertGreaterEqual(aio.run(main()), 0.049)

    def test_sleep_zero_yields_once(self):
        async def main():
            out = []
            aio.get_running_loop().call_soon(out.append, 'cb')
            await aio.sleep(0)
            return out
        self.assertEqual(aio.run(main()), ['cb'])


class Gather(unittest.TestCase):
    def test_results_in_argument_order(self):
        async def f(d, v):
            await aio.sleep(d)
            return v

        async def main():
            return await aio.gather(f(0.03, 'a'), f(0.01, 'b'), f(0, 'c'))
        self.assertEqual(aio.run(main()), ['a', 'b', 'c'])

    def test_first_exception_or_return_exceptions(self):
        async def bad():
            raise KeyError('x')

        async def ok():
            await aio.sleep(0.01)
            return 1

        async def main():
            with self.assertRaises(KeyError):
                await aio.gather(ok(), bad())
            r = await aio.gather(ok(), bad(), return_exceptions=True)
            self.assertEqual(r[0], 1)
            self.assertIsInstance(r[1], KeyError)
            self.assertEqual(await aio.gather(), [])
        aio.run(main())

    def test_cancel_gather_cancels_children(self):
        async def main():
            kids = [aio.create_task(aio.sleep(10)) for _ in range(3)]
            g = aio.gather(*kids)
            await aio.sleep(0)
            g.cancel()
            with self.assertRaises(aio.CancelledError):
                await g
            self.assertTrue(all(k.cancelled() for k in kids))
        aio.run(main())


class WaitFor(unittest.TestCase):
    def test_timeout_cancels_inner(self):
        cancelled = []

        async def slow():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                cancelled.append(True)
                raise

        async def main():
            t0 = time.monotonic()
            with self.assertRaises(aio.TimeoutError):
                await aio.wait_for(slow(), 0.05)
            return time.monotonic() - t0
        self.assertLess(aio.run(main()), 1)
        self.assertEqual(cancelled, [True])

    def test_result_in_time_and_zero_and_none(self):
        async def main():
            self.assertEqual(await aio.wait_for(aio.sleep(0.01, 'v'), 1), 'v')
            self.assertEqual(await aio.wait_for(aio.sleep(0, 'n'), None), 'n')
            with self.assertRaises(TimeoutError):
                await aio.wait_for(aio.sleep(1), 0)
        aio.run(main())

    def test_reader_wait_for_leaves_reader_usable(self):
        async def main():
            r = aio.StreamReader()
            r.feed_data(b'ab')
            with self.assertRaises(TimeoutError):
                await aio.wait_for(r.readline(), 0.02)
            r.feed_data(b'c\n')
            return await r.readline()
        self.assertEqual(aio.run(main()), b'abc\n')


class Locks(unittest.TestCase):
    def test_semaphore_limits_concurrency(self):
        async def main():
            sem = aio.Semaphore(2)
            active = peak = 0

            async def job():
                nonlocal active, peak
                async with sem:
                    active += 1
                    peak = max(peak, active)
                    await aio.sleep(0.01)
                    active -= 1
            await aio.gather(*(job() for _ in range(7)))
            return peak, sem.locked()
        self.assertEqual(aio.run(main()), (2, False))

    def test_semaphore_fifo_and_cancel(self):
        async def main():
            sem = aio.Semaphore(0)
            order = []

            async def w(i):
                await sem.acquire()
                order.append(i)
            ts = [aio.create_task(w(i)) for i in range(3)]
            await aio.sleep(0)
            ts[0].cancel()
            sem.release()
            sem.release()
            await aio.gather(*ts, return_exceptions=True)
            return order
        self.assertEqual(aio.run(main()), [1, 2])
        with self.assertRaises(ValueError):
            aio.Semaphore(-1)

    def test_bounded_semaphore(self):
        async def main():
            s = aio.BoundedSemaphore(1)
            await s.acquire()
            s.release()
            with self.assertRaises(ValueError):
                s.release()
        aio.run(main())

    def test_event(self):
        async def main():
            ev = aio.Event()
            out = []

            async def waiter(i):
                await ev.wait()
                out.append(i)
            ts = [aio.create_task(waiter(i)) for i in range(3)]
            await aio.sleep(0)
            self.assertFalse(ev.is_set())
            ev.set()
            await aio.gather(*ts)
            self.assertTrue(await ev.wait())
            ev.clear()
            self.assertFalse(ev.is_set())
            return out
        self.assertEqual(aio.run(main()), [0, 1, 2])


if __name__ == '__main__':
    unittest.main()
