"""run, create_task, sleep, gather, wait_for: asyncio's task helpers on the
C loop.  Task and Future are C types (pyfuture.c); these helpers are short
Python on top of them because their semantics (who cancels what, in which
order) are asyncio's Python-level semantics, and none of them is on the
per-message path of a stream program."""

import functools
import signal
import threading
import types

from asyncio.exceptions import CancelledError

from . import _core
from ._core import Future, Task, get_running_loop


def _loop_of(loop):
    return get_running_loop() if loop is None else loop


def current_task(loop=None):
    return _loop_of(loop)._current_task()


def all_tasks(loop=None):
    return {t for t in _loop_of(loop)._all_tasks() if not t.done()}


def create_task(coro, *, name=None, context=None):
    return get_running_loop().create_task(coro, name=name, context=context)


def ensure_future(obj, *, loop=None):
    if isinstance(obj, Future):
        return obj
    if hasattr(obj, 'send') and hasattr(obj, 'throw'):
        return _loop_of(loop).create_task(obj)
    if hasattr(obj, '__await__'):
        return _loop_of(loop).create_task(_wrap_awaitable(obj))
    raise TypeError('An asyncio.Future, a coroutine or an awaitable is required')


async def _wrap_awaitable(awaitable):
    return await awaitable


def run(main, *, debug=None, backend=None):
    """Run a coroutine on a fresh C loop, then cancel what is left and close
    the loop, as asyncio.run() does.  An exception raised by any callback
    while it runs is raised here.  Ctrl-C (SIGINT) cancels the main task,
    lets its cleanup run and then raises KeyboardInterrupt, as asyncio's.
    `backend` picks the loop's backend, as for new_event_loop()."""
    if _core._get_running_loop() is not None:
        raise RuntimeError('asyncstreams.run() cannot be called from a running event loop')
    if not (hasattr(main, 'send') and hasattr(main, 'throw')):
        raise ValueError(f'a coroutine was expected, got {main!r}')
    from .events import Loop
    try:
        loop = Loop(backend=backend)
    except BaseException:
        main.close()  # never to run: no "coroutine was never awaited"
        raise
    try:
        return _run_main(loop, loop.create_task(main))
    finally:
        try:
            _cancel_all_tasks(loop)
        finally:
            loop.close()


class _Interrupts:
    """asyncio.Runner's SIGINT handler: the first Ctrl-C cancels the main
    task (so its cleanup runs) instead of raising KeyboardInterrupt wherever
    the program happens to be; a second one, or one after main is done,
    raises it at once."""

    def __init__(self, loop, task):
        self.loop = loop
        self.task = task
        self.count = 0

    def __call__(self, signum, frame):
        self.count += 1
        if self.count == 1 and not self.task.done():
            self.task.cancel()
            # Wake the loop if it is waiting in select() with a long timeout.
            self.loop.call_soon_threadsafe(_nothing)
            return
        raise KeyboardInterrupt()


def _nothing():
    pass


def _run_main(loop, task):
    # As asyncio.Runner.run(): only in the main thread, and only over
    # Python's default handler (a program's own SIGINT handler is kept).
    handler = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        handler = _Interrupts(loop, task)
        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:
            handler = None  # an embedded interpreter without signal handling
    try:
        return loop.run_until_complete(task)
    except CancelledError:
        # Cancelled by our Ctrl-C and by nothing else: the program was
        # interrupted, so say so.
        if handler is not None and handler.count > 0 and task.uncancel() == 0:
            raise KeyboardInterrupt()
        raise
    finally:
        if handler is not None and signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _cancel_all_tasks(loop):
    to_cancel = [t for t in loop._all_tasks() if not t.done()]
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            import sys
            import traceback
            print('unhandled exception during asyncstreams.run() shutdown', file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)


@types.coroutine
def _sleep0():
    # A bare yield: the Task runs the coroutine again on the next turn.
    yield


def _set_result_unless_cancelled(fut, result):
    if not fut.cancelled():
        fut.set_result(result)


async def sleep(delay, result=None):
    """Return result after delay seconds (a C timer)."""
    if delay <= 0:
        await _sleep0()
        return result
    loop = get_running_loop()
    future = loop.create_future()
    handle = loop.call_later(delay, _set_result_unless_cancelled, future, result)
    try:
        return await future
    finally:
        handle.cancel()


class _GatheringFuture(Future):
    """gather()'s result: cancelling it cancels the children."""

    def __new__(cls, children, *, loop):
        self = super().__new__(cls, loop=loop)
        self._children = children
        self._cancel_requested = False
        return self

    def cancel(self, msg=None):
        if self.done():
            return False
        ret = False
        for child in self._children:
            if child.cancel(msg=msg):
                ret = True
        if ret:
            self._cancel_requested = True
        return ret


def gather(*coros_or_futures, return_exceptions=False):
    """asyncio.gather(): results in argument order; the first exception is
    raised unless return_exceptions; cancelling the gather cancels all."""
    if not coros_or_futures:
        outer = get_running_loop().create_future()
        outer.set_result([])
        return outer

    def _done_callback(fut):
        nonlocal nfinished
        nfinished += 1
        if outer is None or outer.done():
            if not fut.cancelled():
                fut.exception()  # mark it retrieved
            return
        if not return_exceptions:
            if fut.cancelled():
                outer.set_exception(CancelledError())
                return
            exc = fut.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
        if nfinished == nfuts:
            results = []
            for f in children:
                if f.cancelled():
                    res = CancelledError()
                else:
                    res = f.exception()
                    if res is None:
                        res = f.result()
                results.append(res)
            if outer._cancel_requested:
                outer.set_exception(CancelledError())
            else:
                outer.set_result(results)

    arg_to_fut = {}
    children = []
    nfuts = nfinished = 0
    outer = None
    loop = None
    for arg in coros_or_futures:
        if arg not in arg_to_fut:
            fut = ensure_future(arg, loop=loop)
            if loop is None:
                loop = fut.get_loop()
            nfuts += 1
            arg_to_fut[arg] = fut
            fut.add_done_callback(_done_callback)
        else:
            fut = arg_to_fut[arg]
        children.append(fut)
    outer = _GatheringFuture(children, loop=loop)
    return outer


def _release_waiter(waiter, *args):
    if not waiter.done():
        waiter.set_result(None)


async def _cancel_and_wait(fut):
    waiter = fut.get_loop().create_future()
    cb = functools.partial(_release_waiter, waiter)
    fut.add_done_callback(cb)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(cb)


async def wait_for(fut, timeout):
    """Wait for fut, cancelling it and raising TimeoutError after timeout
    seconds (None: no limit).  As asyncio: if wait_for itself is cancelled,
    fut is cancelled too."""
    loop = get_running_loop()
    if timeout is None:
        return await fut
    if timeout <= 0:
        fut = ensure_future(fut)
        if fut.done():
            return fut.result()
        await _cancel_and_wait(fut)
        try:
            return fut.result()
        except CancelledError as exc:
            raise TimeoutError() from exc
    waiter = loop.create_future()
    timeout_handle = loop.call_later(timeout, _release_waiter, waiter)
    cb = functools.partial(_release_waiter, waiter)
    fut = ensure_future(fut)
    fut.add_done_callback(cb)
    try:
        try:
            await waiter
        except CancelledError:
            if fut.done():
                return fut.result()
            fut.remove_done_callback(cb)
            await _cancel_and_wait(fut)
            raise
        if fut.done():
            return fut.result()
        fut.remove_done_callback(cb)
        await _cancel_and_wait(fut)
        try:
            return fut.result()
        except CancelledError as exc:
            raise TimeoutError() from exc
    finally:
        timeout_handle.cancel()
