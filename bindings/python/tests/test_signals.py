"""loop.add_signal_handler() / remove_signal_handler() on the C loop
(lib/signals.c), each scenario run on asyncio's own loop and on ours with
the same results, the same refusals and the same messages."""
import asyncio
import os
import signal
import threading
import unittest

import asyncstreams


def on_both(scenario):
    """scenario(mod, loop, log) on a fresh asyncio loop and a fresh
    asyncstreams loop (mod: the module's own wait_for); returns the logs."""
    logs = []
    for mod in (asyncio, asyncstreams):
        loop = mod.new_event_loop()
        log = []
        try:
            scenario(mod, loop, log)
        finally:
            loop.close()
        logs.append(log)
    return logs


def refusal(log, call, *args):
    try:
        log.append(('ok', call(*args)))
    except Exception as e:  # noqa: B902 - recording the refusal
        log.append((type(e).__name__, str(e)))


class SignalHandlers(unittest.TestCase):
    def setUp(self):
        self.before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGINT)}

    def tearDown(self):
        # What the signals did before comes back after the loops are gone.
        for s, h in self.before.items():
            self.assertIs(signal.getsignal(s), h)

    def test_a_signal_runs_the_callback_with_its_args(self):
        def scenario(mod, loop, log):
            got = loop.create_future()

            def handler(a, b):
                log.append(('called', a, b))
                if not got.done():
                    got.set_result(None)
            loop.add_signal_handler(signal.SIGUSR1, handler, 'a', 2)
            loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
            loop.run_until_complete(mod.wait_for(got, 10))
            log.append(('removed', loop.remove_signal_handler(signal.SIGUSR1)))
            log.append(('again', loop.remove_signal_handler(signal.SIGUSR1)))
        theirs, ours = on_both(scenario)
        self.assertEqual(ours, [('called', 'a', 2), ('removed', True), ('again', False)])
        self.assertEqual(ours, theirs)

    def test_sigint_is_a_callback_not_keyboard_interrupt(self):
        def scenario(mod, loop, log):
            got = loop.create_future()
            loop.add_signal_handler(signal.SIGINT, lambda: got.set_result('sigint'))
            t = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
            t.start()
            try:
                log.append(loop.run_until_complete(mod.wait_for(got, 10)))
            finally:
                t.join()
                loop.remove_signal_handler(signal.SIGINT)
        theirs, ours = on_both(scenario)
        self.assertEqual(ours, ['sigint'])
        self.assertEqual(ours, theirs)

    def test_a_second_add_replaces_the_first(self):
        def scenario(mod, loop, log):
            got = loop.create_future()
            loop.add_signal_handler(signal.SIGUSR1, lambda: log.append('first'))
            loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result('second'))
            os.kill(os.getpid(), signal.SIGUSR1)
            log.append(loop.run_until_complete(mod.wait_for(got, 10)))
        theirs, ours = on_both(scenario)
        self.assertEqual(ours, ['second'])
        self.assertEqual(ours, theirs)

    def test_the_same_refusals_as_asyncio(self):
        async def coro():
            pass

        def scenario(mod, loop, log):
            refusal(log, loop.add_signal_handler, 'x', print)
            refusal(log, loop.add_signal_handler, 0, print)
            refusal(log, loop.add_signal_handler, 100000, print)
            refusal(log, loop.add_signal_handler, signal.SIGKILL, print)
            refusal(log, loop.add_signal_handler, signal.SIGUSR1, coro)
            refusal(log, loop.remove_signal_handler, 'x')
            refusal(log, loop.remove_signal_handler, 100000)
            refusal(log, loop.remove_signal_handler, signal.SIGUSR2)
            # From another thread: only the main thread handles signals.
            t = threading.Thread(target=refusal, args=(log, loop.add_signal_handler,
                                                       signal.SIGUSR1, print))
            t.start()
            t.join()
        theirs, ours = on_both(scenario)
        self.assertEqual(len(ours), 9)
        self.assertEqual(ours, theirs)

    def test_a_closed_loop_refuses(self):
        def scenario(mod, loop, log):
            loop.close()
            refusal(log, loop.add_signal_handler, signal.SIGUSR1, print)
        theirs, ours = on_both(scenario)
        self.assertEqual(ours, [('RuntimeError', 'Event loop is closed')])
        self.assertEqual(ours, theirs)

    def test_close_puts_the_old_disposition_back(self):
        seen = []
        old = signal.signal(signal.SIGUSR1, lambda *a: seen.append('python'))
        try:
            loop = asyncstreams.new_event_loop()
            got = loop.create_future()
            loop.add_signal_handler(signal.SIGUSR1, lambda: got.set_result('loop'))
            os.kill(os.getpid(), signal.SIGUSR1)
            self.assertEqual(loop.run_until_complete(asyncstreams.wait_for(got, 10)), 'loop')
            self.assertEqual(seen, [])          # the loop's handler had it
            loop.close()
            os.kill(os.getpid(), signal.SIGUSR1)
            self.assertEqual(seen, ['python'])  # Python's C handler is back
        finally:
            signal.signal(signal.SIGUSR1, old)

    def test_another_loop_owns_a_handled_signal(self):
        # Ours refuses where asyncio's second loop silently takes every
        # signal from the first (set_wakeup_fd is one per process).
        one, two = asyncstreams.new_event_loop(), asyncstreams.new_event_loop()
        try:
            one.add_signal_handler(signal.SIGUSR1, print)
            with self.assertRaisesRegex(RuntimeError, 'another event loop'):
                two.add_signal_handler(signal.SIGUSR1, print)
            two.add_signal_handler(signal.SIGUSR2, print)
            self.assertTrue(two.remove_signal_handler(signal.SIGUSR2))
        finally:
            one.close()
            two.close()

    def test_no_reference_is_kept(self):
        import gc
        import weakref

        class Handler:
            def __call__(self):
                pass
        loop = asyncstreams.new_event_loop()
        h = Handler()
        ref = weakref.ref(h)
        loop.add_signal_handler(signal.SIGUSR1, h)
        del h
        self.assertIsNotNone(ref())
        loop.remove_signal_handler(signal.SIGUSR1)
        gc.collect()
        self.assertIsNone(ref())
        loop.close()


if __name__ == '__main__':
    unittest.main()
