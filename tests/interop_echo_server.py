"""A CPython asyncio echo server for the interop test.

Listens on 127.0.0.1, port chosen by the OS; prints "PORT <n>" on stdout,
echoes one connection until EOF, then exits.  Written for CPython 3.13.
"""
import asyncio
import sys


async def main():
    done = asyncio.Event()

    async def handle(reader, writer):
        while data := await reader.read(100):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.wait_for(done.wait(), 20)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
