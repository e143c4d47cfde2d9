"""Helpers shared by the binding's tests."""
import asyncio
import sys

import asyncstreams


def outcome(exc):
    """Everything that identifies an exception: type, message, fields."""
    d = {'type': type(exc).__name__, 'str': str(exc), 'args': exc.args}
    for field in ('partial', 'expected', 'consumed'):
        if hasattr(exc, field):
            d[field] = getattr(exc, field)
    return ('exc', d)


async def rec(log, awaitable):
    try:
        value = await awaitable
    except BaseException as e:  # noqa: B902 - recording every outcome
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        log.append(outcome(e))
    else:
        log.append(('ok', value))


def both(scenario, limit=None):
    """Run scenario(mod, reader, log) on asyncio and on asyncstreams, each
    under its own run(); return the two logs."""
    logs = {}
    for mod in (asyncio, asyncstreams):
        log = []

        async def main():
            kw = {} if limit is None else {'limit': limit}
            r = mod.StreamReader(**kw)
            await scenario(mod, r, log)
            log.append(('buffer', bytes(r._buffer), r.at_eof()))
        mod.run(main())
        logs[mod.__name__] = log
    return logs['asyncio'], logs['asyncstreams']


HAVE_313 = sys.version_info >= (3, 13)
