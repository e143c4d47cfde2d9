"""timeouts.py - wait_for around reads and connects: a server that answers
slowly, a read that times out, one that does not."""
import asyncstreams as asyncio


async def slow(reader, writer):
    line = await reader.readline()
    await asyncio.sleep(0.3)
    writer.write(line)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main():
    server = await asyncio.start_server(slow, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]

    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'ping\n')
    try:
        await asyncio.wait_for(reader.readline(), timeout=0.05)
    except TimeoutError:
        print('no answer within 0.05 s')
    # The timed-out read was cancelled cleanly: the next one still works.
    print('then:', await asyncio.wait_for(reader.readline(), timeout=5))
    writer.close()
    await writer.wait_closed()

    reader, writer = await asyncio.wait_for(
        asyncio.open_connection('127.0.0.1', port), timeout=5)
    print('connected within the timeout')
    writer.write(b'bye\n')
    print('then:', await reader.readline())
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


asyncio.run(main())
