"""The runtime: Loop, Future, Task, the callback thunk, the interpreter
lock around select(), and the SWIG layer's error mapping."""
import asyncio
import errno
import gc
import sys
import threading
import time
import unittest

import asyncstreams
from asyncstreams import _core


class LoopTests(unittest.TestCase):
    def test_loop_argument_of_the_constructors(self):
        # None means the running loop: with none running, asyncio's own
        # RuntimeError text; an explicit Loop is taken; anything else is a
        # TypeError.
        for cls in (_core.Future, _core.StreamReader):
            with self.assertRaisesRegex(RuntimeError, 'event loop'):
                cls()
            with self.assertRaisesRegex(TypeError, 'asyncstreams Loop'):
                cls(loop=object())

        async def nothing():
            pass
        coro = nothing()
        with self.assertRaisesRegex(TypeError, 'asyncstreams Loop'):
            _core.Task(coro, loop=object())
        coro.close()
        loop = asyncstreams.Loop()
        try:
            fut = _core.Future(loop=loop)
            self.assertFalse(fut.done())
            fut.cancel()
        finally:
            loop.close()

    def test_call_soon_order_args_and_handles(self):
        loop = asyncstreams.Loop()
        out = []
        loop.call_soon(out.append, 1)
        h = loop.call_soon(out.append, 2)
        loop.call_soon(out.append, 3)
        h.cancel()
        self.assertTrue(h.cancelled())
        self.assertEqual(out, [])  # nothing runs synchronously
        loop.run_once()
        self.assertEqual(out, [1, 3])
        loop.close()
        self.assertTrue(loop.is_closed())

    def test_timers_fire_in_order(self):
        loop = asyncstreams.Loop()
        out = []
        t0 = loop.time()
        loop.call_later(0.03, out.append, 'b')
        th = loop.call_at(t0 + 0.01, out.append, 'a')
        self.assertAlmostEqual(th.when(), t0 + 0.01)
        loop.call_later(0.05, loop.stop)
        loop.run_forever()
        self.assertEqual(out, ['a', 'b'])
        self.assertGreaterEqual(loop.time() - t0, 0.05)
        loop.close()

    def test_callback_exception_surfaces_from_run(self):
        def bad():
            raise ZeroDivisionError('from a callback')

        async def main():
            asyncstreams.get_running_loop().call_soon(bad)
            await asyncstreams.sleep(10)

        t0 = time.monotonic()
        with self.assertRaisesRegex(ZeroDivisionError, 'from a callback'):
            asyncstreams.run(main())
        self.assertLess(time.monotonic() - t0, 5)

    def test_exception_handler_calls_as_asyncio(self):
        # get/set/call_exception_handler() and the default handler, which
        # logs on the 'asyncio' logger, side by side with asyncio's.
        seen = {}
        for mod in (asyncio, asyncstreams):
            loop = mod.new_event_loop()
            out = [loop.get_exception_handler()]
            with self.assertRaises(TypeError):
                loop.set_exception_handler(42)
            calls = []

            def handler(lp, context, loop=loop, calls=calls):
                calls.append((lp is loop, dict(context)))
            loop.set_exception_handler(handler)
            out.append(loop.get_exception_handler() is handler)
            loop.call_exception_handler({'message': 'one', 'x': 1})
            out.append(calls)

            def bad(lp, context):
                raise ValueError('in the handler')
            loop.set_exception_handler(bad)
            with self.assertLogs('asyncio', 'ERROR') as cm:
                loop.call_exception_handler({'message': 'two'})
            out.append([(r.getMessage(), r.exc_info[0]) for r in cm.records])
            loop.set_exception_handler(None)
            with self.assertLogs('asyncio', 'ERROR') as cm:
                loop.call_exception_handler({'message': 'three', 'exception': ZeroDivisionError('z'),
                                             'b': 'bee', 'a': 1})
                loop.call_exception_handler({})
            out.append([(r.getMessage(), r.exc_info and r.exc_info[0]) for r in cm.records])
            loop.close()
            seen[mod.__name__] = out
        self.assertEqual(seen['asyncstreams'], seen['asyncio'])

    def test_done_callback_exception_surfaces(self):
        async def main():
            fut = asyncstreams.get_running_loop().create_future()
            fut.add_done_callback(lambda f: 1 / 0)
            fut.set_result(1)
            await asyncstreams.sleep(10)
        with self.assertRaises(ZeroDivisionError):
            asyncstreams.run(main())

    def test_callbacks_release_their_references(self):
        class Token:
            pass
        loop = asyncstreams.Loop()
        tok = Token()
        before = sys.getrefcount(tok)
        for _ in range(100):
            loop.call_soon(lambda t=tok: None)
        h = loop.call_later(100, lambda t=tok: None)
        self.assertGreater(sys.getrefcount(tok), before)
        loop.run_once()
        h.cancel()
        del h
        self.assertEqual(sys.getrefcount(tok), before)
        # Closing drops what is still scheduled, through destroy.
        loop.call_later(100, lambda t=tok: None)
        loop.close()
        self.assertEqual(sys.getrefcount(tok), before)

    def test_gil_released_while_waiting_in_select(self):
        # A pure-Python thread makes progress while the loop sleeps.
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        async def main():
            th = threading.Thread(target=spin)
            th.start()
            start = counter[0]
            await asyncstreams.sleep(0.2)
            progressed = counter[0] - start
            stop.set()
            th.join()
            return progressed

        sys.setswitchinterval(0.001)
        try:
            progressed = asyncstreams.run(main())
        finally:
            sys.setswitchinterval(0.005)
        self.assertGreater(progressed, 1000)

    def test_call_soon_threadsafe_wakes_the_loop(self):
        async def main():
            loop = asyncstreams.get_running_loop()
            fut = loop.create_future()
            threading.Timer(0.05, loop.call_soon_threadsafe, (fut.set_result, 'hi')).start()
            return await asyncstreams.wait_for(fut, 5)
        self.assertEqual(asyncstreams.run(main()), 'hi')

    def test_run_refuses_nesting_and_non_coroutines(self):
        async def inner():
            return 1

        async def main():
            c = inner()
            try:
                asyncstreams.run(c)
            finally:
                c.close()
        with self.assertRaises(RuntimeError):
            asyncstreams.run(main())
        with self.assertRaises(ValueError):
            asyncstreams.run(42)

    def test_run_leaves_nothing_alive(self):
        async def main():
            loop = asyncstreams.get_running_loop()
            r = asyncstreams.StreamReader()
            r.feed_data(b'x\n')
            await r.readline()
            del r
            gc.collect()
            return loop
        loop = asyncstreams.run(main())
        self.assertTrue(loop.is_closed())


class FutureTests(unittest.TestCase):
    def test_result_exception_cancel(self):
        async def main():
            loop = asyncstreams.get_running_loop()
            f = loop.create_future()
            self.assertFalse(f.done())
            with self.assertRaises(asyncstreams.InvalidStateError):
                f.result()
            loop.call_soon(f.set_result, 7)
            self.assertEqual(await f, 7)
            with self.assertRaises(asyncstreams.InvalidStateError):
                f.set_result(8)
            g = asyncstreams.Future()
            err = KeyError('k')
            g.set_exception(err)
            self.assertIs(g.exception(), err)
            with self.assertRaises(KeyError) as cm:
                await g
            self.assertIs(cm.exception, err)
            h = asyncstreams.Future()
            self.assertTrue(h.cancel('why'))
            self.assertFalse(h.cancel())
            with self.assertRaises(asyncstreams.CancelledError) as cm:
                h.result()
            self.assertEqual(cm.exception.args, ('why',))
            with self.assertRaises(TypeError):
                asyncstreams.Future().set_exception(StopIteration())
        asyncstreams.run(main())

    def test_done_callbacks_run_in_order_and_can_be_removed(self):
        async def main():
            f = asyncstreams.Future()
            out = []
            cb1 = lambda fut: out.append(('1', fut.result()))  # noqa: E731
            f.add_done_callback(cb1)
            f.add_done_callback(lambda fut: out.append('2'))
            f.add_done_callback(cb1)
            self.assertEqual(f.remove_done_callback(cb1), 2)
            f.set_result('r')
            self.assertEqual(out, [])
            await asyncstreams.sleep(0)
            self.assertEqual(out, ['2'])
            f.add_done_callback(lambda fut: out.append('late'))
            await asyncstreams.sleep(0)
            self.assertEqual(out, ['2', 'late'])
        asyncstreams.run(main())


class TaskTests(unittest.TestCase):
    def test_task_result_and_current_task(self):
        async def child(x):
            await asyncstreams.sleep(0)
            return x * 2, asyncstreams.current_task()

        async def main():
            t = asyncstreams.create_task(child(21), name='kid')
            self.assertEqual(t.get_name(), 'kid')
            v, cur = await t
            self.assertIs(cur, t)
            self.assertIn(asyncstreams.current_task(), asyncstreams.all_tasks())
            return v
        self.assertEqual(asyncstreams.run(main()), 42)

    def test_cancel_raises_inside_the_coroutine(self):
        seen = []

        async def child():
            try:
                await asyncstreams.sleep(10)
            except asyncstreams.CancelledError as e:
                seen.append(e.args)
                raise

        async def main():
            t = asyncstreams.create_task(child())
            await asyncstreams.sleep(0)
            t.cancel('stop it')
            with self.assertRaises(asyncstreams.CancelledError):
                await t
            self.assertTrue(t.cancelled())
            # Cancelled before its first step: never starts.
            t2 = asyncstreams.create_task(child())
            t2.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t2
        asyncstreams.run(main())
        self.assertEqual(seen, [('stop it',)])

    def test_cancelling_a_task_cancels_the_task_it_awaits(self):
        async def inner():
            await asyncstreams.sleep(10)

        async def outer(t):
            await t

        async def main():
            ti = asyncstreams.create_task(inner())
            to = asyncstreams.create_task(outer(ti))
            await asyncstreams.sleep(0)
            await asyncstreams.sleep(0)
            to.cancel()
            await asyncstreams.gather(to, return_exceptions=True)
            self.assertTrue(ti.cancelled())
        asyncstreams.run(main())

    def test_exception_in_task_goes_to_awaiter(self):
        async def bad():
            raise OSError(errno.ECONNRESET, 'reset')

        async def main():
            with self.assertRaises(ConnectionResetError):
                await asyncstreams.create_task(bad())
        asyncstreams.run(main())

    def test_bad_yield_is_an_error_in_the_task(self):
        import types

        @types.coroutine
        def weird():
            yield 42

        async def main():
            with self.assertRaisesRegex(RuntimeError, 'bad yield'):
                await asyncstreams.create_task(weird())
        asyncstreams.run(main())

    def test_main_task_exception_is_raised_by_run(self):
        async def main():
            await asyncstreams.sleep(0)
            raise LookupError('main')
        with self.assertRaisesRegex(LookupError, 'main'):
            asyncstreams.run(main())

    def test_run_cancels_leftover_tasks(self):
        state = []

        async def forever():
            try:
                await asyncstreams.sleep(100)
            finally:
                state.append('cleaned up')

        async def main():
            asyncstreams.create_task(forever())
            await asyncstreams.sleep(0)
        asyncstreams.run(main())
        self.assertEqual(state, ['cleaned up'])


class ErrorMappingTests(unittest.TestCase):
    def test_swig_functions_and_codes(self):
        self.assertEqual(_core.as_err_name(-errno.ECONNRESET), 'ECONNRESET')
        self.assertEqual(_core.as_strerror(_core.AS_ECANCELLED), 'operation cancelled')
        self.assertTrue(_core.as_err_is_lib(_core.AS_ETIMEOUT))
        self.assertIn('Doxygen', 'Doxygen') if False else None
        self.assertIn('message', _core.as_strerror.__doc__ or 'message')

    def test_system_errors_are_oserror_subclasses(self):
        loop = asyncstreams.Loop()
        # Not an open fd: EBADF, as asyncio's epoll selector raises.
        with self.assertRaises(OSError) as cm:
            _core.as_loop_add_reader(loop, 1 << 20, lambda: None)
        self.assertEqual(cm.exception.errno, errno.EBADF)
        with self.assertRaises(ValueError):
            _core.as_loop_add_reader(loop, -1, lambda: None)
        loop.close()
        with self.assertRaisesRegex(RuntimeError, 'closed'):
            loop.call_soon(print)

    def test_low_level_reader_calls_return_awaitables(self):
        async def main():
            r = asyncstreams.StreamReader()
            _core.as_reader_feed_data(r, b'abc\n')
            self.assertEqual(_core.as_reader_buffered(r), 4)
            self.assertEqual(await _core.as_reader_readuntil(r, b'c'), b'abc')
            f = _core.as_reader_read(r, 10)
            self.assertTrue(_core.as_future_done(f))
            self.assertEqual(await f, b'\n')
        asyncstreams.run(main())


if __name__ == '__main__':
    unittest.main()
