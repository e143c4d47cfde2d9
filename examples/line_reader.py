"""line_reader.py - read lines and framed records, handling the two stream
errors: IncompleteReadError (EOF inside a record) and LimitOverrunError (a
line longer than the reader's limit)."""
import asyncstreams as asyncio


async def serve(reader, writer):
    # Two good lines, a line longer than the client's limit, then a
    # record cut short by EOF.
    writer.write(b'first\nsecond\n' + b'x' * 200 + b'\nlast\n12345')
    await writer.drain()
    writer.close()
    await writer.wait_closed()


# listing: reader
async def read_all(reader):
    while True:
        try:
            line = await reader.readuntil(b'\n')
        except asyncio.LimitOverrunError as e:
            # Drop the long line: consume what was looked at, then the rest
            # up to the separator.
            print(f'line too long ({e.consumed} bytes seen), skipped')
            await reader.readexactly(e.consumed)
            await reader.readuntil(b'\n')
            continue
        except asyncio.IncompleteReadError as e:
            if e.partial:
                print(f'EOF inside a line: {e.partial!r}')
            break
        print('line:', line)
# end listing


async def main():
    server = await asyncio.start_server(serve, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection('127.0.0.1', port, limit=100)
    await read_all(reader)
    try:
        await reader.readexactly(4)
    except asyncio.IncompleteReadError as e:
        print(f'readexactly at EOF: expected {e.expected}, got {e.partial!r}')
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


asyncio.run(main())
