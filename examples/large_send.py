"""large_send.py - send 16 MiB in 64 KiB writes, calling drain() whenever
the write buffer is above 64 KiB, to a receiver that counts the bytes."""
import asyncstreams as asyncio

TOTAL = 16 * 1024 * 1024
CHUNK = 64 * 1024


async def receive(reader, writer):
    n = 0
    while data := await reader.read(65536):
        n += len(data)
    writer.write(str(n).encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


# listing: sender
async def send_all(writer):
    chunk = b'\0' * CHUNK
    waits = 0
    for _ in range(TOTAL // CHUNK):
        writer.write(chunk)
        if writer.transport.get_write_buffer_size() > 64 * 1024:
            waits += 1
            await writer.drain()
    await writer.drain()
    writer.write_eof()
    return waits
# end listing


async def main():
    server = await asyncio.start_server(receive, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    await send_all(writer)
    print('receiver counted', int(await reader.read()), 'bytes of', TOTAL)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


asyncio.run(main())
