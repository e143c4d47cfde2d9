"""echo.py - the asyncio echo server and echo client, on the C loop.

The server echoes each line back; three clients run at once (gather),
each sends a message and prints the reply.  The only change from the
asyncio program is the import.
"""
# listing: import
import asyncstreams as asyncio
# end listing


# listing: server
async def handle_echo(reader, writer):
    data = await reader.read(100)
    message = data.decode()
    addr = writer.get_extra_info('peername')
    assert addr[0] == '127.0.0.1'
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
# end listing


# listing: client
async def tcp_echo_client(message, port):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(message.encode())
    await writer.drain()
    data = await reader.read(100)
    print(f'Sent {message!r}, received {data.decode()!r}')
    writer.close()
    await writer.wait_closed()
# end listing


# listing: main
async def main():
    server = await asyncio.start_server(handle_echo, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(*(tcp_echo_client(f'Hello World {i}!', port)
                               for i in range(3)))
    print('server closed:', not server.is_serving())


asyncio.run(main())
# end listing
