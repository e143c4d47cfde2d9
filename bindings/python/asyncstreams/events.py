"""The loop: the C loop (asyncstreams._core.Loop) plus asyncio's scheduling
calls, which go through the SWIG wrappers of as_loop_call_soon() and
friends.  Each callback crosses into C as one Python callable: the SWIG
typemap stores it in the C callback's userdata, the thunk calls it, and the
destroy hook drops the reference once the loop is done with it."""

import errno
import functools
import inspect
import logging
import signal
import traceback

from . import _core

# asyncio's logger: a program that configures logging for asyncio's reports
# keeps getting them once it imports asyncstreams instead.
logger = logging.getLogger('asyncio')

Handle = _core.Handle


def _bind(callback, args, context):
    if context is not None:
        return functools.partial(context.run, callback, *args)
    if args:
        return functools.partial(callback, *args)
    return callback


class Loop(_core.Loop):
    """asyncio's event-loop calls on the C loop.

    Exceptions raised by callbacks are not logged and lost, as asyncio's
    default handler does: they stop the loop and are raised by
    run_until_complete() (and so by asyncstreams.run()).  The exception is
    a server's client_connected_cb: one connection's failure must not stop
    the server, so what a plain-function callback raises goes to
    call_exception_handler(), as in asyncio.
    """

    _exception_handler = None

    def call_soon(self, callback, *args, context=None):
        return _core.as_loop_call_soon(self, _bind(callback, args, context))

    def call_later(self, delay, callback, *args, context=None):
        return _core.as_loop_call_later(self, float(delay), _bind(callback, args, context))

    def call_at(self, when, callback, *args, context=None):
        return _core.as_loop_call_at(self, float(when), _bind(callback, args, context))

    def call_soon_threadsafe(self, callback, *args, context=None):
        _core.as_loop_call_soon_threadsafe(self, _bind(callback, args, context))

    def add_reader(self, fd, callback, *args):
        _core.as_loop_add_reader(self, _fileno(fd), _bind(callback, args, None))

    def remove_reader(self, fd):
        return bool(_core.as_loop_remove_reader(self, _fileno(fd)))

    def add_writer(self, fd, callback, *args):
        _core.as_loop_add_writer(self, _fileno(fd), _bind(callback, args, None))

    def remove_writer(self, fd):
        return bool(_core.as_loop_remove_writer(self, _fileno(fd)))

    # Signals (lib/signals.c): the C handler writes the signal's number
    # into the loop's wake-up pipe and the callback runs on the loop.
    # The refusals and their messages are asyncio's (unix_events.py).
    def add_signal_handler(self, sig, callback, *args):
        if inspect.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        if self.is_closed():
            raise RuntimeError('Event loop is closed')
        try:
            # asyncio's own test: only the main thread may handle signals.
            signal.set_wakeup_fd(signal.set_wakeup_fd(-1))
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        try:
            _core.as_loop_add_signal_handler(self, sig, _bind(callback, args, None))
        except ValueError:
            raise RuntimeError(f'sig {sig:d} cannot be caught') from None
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise RuntimeError(f'sig {sig:d} is handled by another event loop') from None
            raise

    def remove_signal_handler(self, sig):
        _check_signal(sig)
        return bool(_core.as_loop_remove_signal_handler(self, sig))

    def get_debug(self):
        return False

    # The exception handler, as asyncio's (base_events.py).
    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f'A callable object or None is expected, got {handler!r}')
        self._exception_handler = handler

    def default_exception_handler(self, context):
        """Log the message, the other keys and the exception's traceback
        as an error on the 'asyncio' logger."""
        message = context.get('message') or 'Unhandled exception in event loop'
        exception = context.get('exception')
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        lines = [message]
        for key in sorted(context):
            if key in {'message', 'exception'}:
                continue
            value = context[key]
            if key in ('source_traceback', 'handle_traceback'):
                what = 'Object' if key == 'source_traceback' else 'Handle'
                value = (f'{what} created at (most recent call last):\n'
                         + ''.join(traceback.format_list(value)).rstrip())
            else:
                value = repr(value)
            lines.append(f'{key}: {value}')
        logger.error('\n'.join(lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error('Exception in default exception handler', exc_info=True)
            return
        try:
            # The handler runs in the context of the task, future or handle
            # concerned, if the context names one.
            thing = None
            for key in ('task', 'future', 'handle'):
                thing = context.get(key)
                if thing is not None:
                    break
            ctx = thing.get_context() if hasattr(thing, 'get_context') else None
            if ctx is not None and hasattr(ctx, 'run'):
                ctx.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    'message': 'Unhandled error in exception handler',
                    'exception': exc,
                    'context': context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error('Exception in default exception handler while handling an '
                             'unexpected error in custom exception handler', exc_info=True)

    def __repr__(self):
        state = 'closed' if self.is_closed() else ('running' if self.is_running() else 'idle')
        return f'<asyncstreams.Loop {state}>'


def _check_signal(sig):
    if not isinstance(sig, int):
        raise TypeError(f'sig must be an int, not {sig!r}')
    if sig not in signal.valid_signals():
        raise ValueError(f'invalid signal number {sig}')


def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()


def new_event_loop(backend=None):
    """A new loop on `backend`: 'select', 'poll', 'epoll' (Linux) or 'best',
    the first of those this build has.  None means ASYNCSTREAMS_BACKEND's
    choice if it is set, else 'select'.  An unknown name is a ValueError."""
    return Loop(backend=backend)
