#!/usr/bin/env python3
"""asyncstreams_echo.py - asyncio_echo.py's server on asyncstreams (the C
loop through the Python binding).

usage: asyncstreams_echo.py [--exact SIZE] [--read-size N] [--no-drain]
                            PORT [MAX_SECONDS]

Same shape as asyncio_echo.py: PORT 0 picks a free port; prints "PORT n"
once listening on 127.0.0.1; exits on SIGTERM/SIGINT (Python's default
action: the binding's loop has no signal handlers yet) and after
MAX_SECONDS if given.  The handler is the same code with the import
changed.  Run it with the interpreter the binding was built for
(configure's PYTHON) and PYTHONPATH=bindings/python/pkg.
"""
import argparse
import signal
import socket

import asyncstreams as asyncio


async def handle(reader, writer, read_size, exact, drain):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            if exact:
                data = await reader.readexactly(exact)
            else:
                data = await reader.read(read_size)
                if not data:
                    break
            writer.write(data)
            if drain:
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(args):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    if args.max_seconds:
        loop.call_later(args.max_seconds, lambda: stop.done() or stop.set_result(None))
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args.read_size, args.exact, not args.no_drain),
        "127.0.0.1", args.port, backlog=1024, limit=256 * 1024)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    await stop
    server.close()


def main():
    ap = argparse.ArgumentParser(description="asyncstreams echo server")
    ap.add_argument("--exact", type=int, default=0, metavar="SIZE")
    ap.add_argument("--read-size", type=int, default=64 * 1024)
    ap.add_argument("--no-drain", action="store_true")
    ap.add_argument("port", type=int)
    ap.add_argument("max_seconds", type=float, nargs="?", default=0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
