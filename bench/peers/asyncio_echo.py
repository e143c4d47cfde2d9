#!/usr/bin/python3
"""asyncio_echo.py - asyncio streams echo server (and uvloop's, with --uvloop).

usage: asyncio_echo.py [--uvloop | --selector] [--exact SIZE] [--read-size N]
                       [--no-drain] PORT [MAX_SECONDS]

PORT 0 picks a free port; prints "PORT n" on stdout once listening on
127.0.0.1.  Exits cleanly on SIGTERM/SIGINT, and after MAX_SECONDS if given.

The handler is the plain streams idiom: ``await reader.read(N)`` (64 KiB by
default), ``writer.write(data)``, ``await writer.drain()``.  ``--exact SIZE``
uses ``readexactly(SIZE)`` instead (framed messages).  ``--uvloop`` runs the
same code on uvloop's loop; ``--selector`` on selectors.SelectSelector, the
backend asyncstreams uses.  Run with the system /usr/bin/python3, where
Debian's python3-uvloop is installed.
"""
import argparse
import asyncio
import selectors
import signal
import socket
import sys


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
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
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
    ap = argparse.ArgumentParser(description="asyncio streams echo server")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--uvloop", action="store_true", help="run on uvloop")
    g.add_argument("--selector", action="store_true",
                   help="run on selectors.SelectSelector (select())")
    ap.add_argument("--exact", type=int, default=0, metavar="SIZE",
                    help="readexactly(SIZE) instead of read(N)")
    ap.add_argument("--read-size", type=int, default=64 * 1024)
    ap.add_argument("--no-drain", action="store_true")
    ap.add_argument("port", type=int)
    ap.add_argument("max_seconds", type=float, nargs="?", default=0)
    args = ap.parse_args()
    if args.uvloop:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    elif args.selector:
        runner = asyncio.Runner(
            loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector()))
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
