"""The loop: the C loop (asyncstreams._core.Loop) plus asyncio's scheduling
calls, which go through the SWIG wrappers of as_loop_call_soon() and
friends.  Each callback crosses into C as one Python callable: the SWIG
typemap stores it in the C callback's userdata, the thunk calls it, and the
destroy hook drops the reference once the loop is done with it."""

import functools

from . import _core

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
    run_until_complete() (and so by asyncstreams.run()).
    """

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

    def get_debug(self):
        return False

    def __repr__(self):
        state = 'closed' if self.is_closed() else ('running' if self.is_running() else 'idle')
        return f'<asyncstreams.Loop {state}>'


def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()


def new_event_loop():
    return Loop()
