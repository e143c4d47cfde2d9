"""asyncstreams: asyncio's streams API running on a C event loop.

Programs written for asyncio's streams port by changing the import::

    import asyncstreams as asyncio

The C library does the work: the loop (select()), futures, the
StreamReader, the transports.  This package is the thin Python layer that
gives them asyncio's names and behaviour.  See tutorial/13-bindings.md.
"""

from asyncio.exceptions import (CancelledError, IncompleteReadError,
                                InvalidStateError, LimitOverrunError)

from . import _core
from ._core import Future, StreamReader, Task, get_running_loop, _get_running_loop
from .events import Loop, Handle, new_event_loop
from .tasks import (all_tasks, create_task, current_task, ensure_future,
                    gather, run, sleep, wait_for)
from .locks import BoundedSemaphore, Event, Semaphore
from .streams import (Server, StreamWriter, open_connection, open_unix_connection,
                      start_server, start_unix_server)

# asyncio.TimeoutError is the builtin TimeoutError since Python 3.11.
TimeoutError = TimeoutError

__all__ = (
    'run', 'create_task', 'gather', 'sleep', 'wait_for', 'ensure_future',
    'current_task', 'all_tasks', 'get_running_loop', 'new_event_loop',
    'Loop', 'Handle', 'Future', 'Task',
    'Semaphore', 'BoundedSemaphore', 'Event',
    'StreamReader', 'StreamWriter', 'Server',
    'open_connection', 'start_server', 'open_unix_connection', 'start_unix_server',
    'CancelledError', 'TimeoutError', 'IncompleteReadError',
    'LimitOverrunError', 'InvalidStateError',
)
