"""you_said.py - a line server that answers "You said: <line>" until the
client sends "bye"; a client talks to it."""
import asyncstreams as asyncio


async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line or line.strip() == b'bye':
            break
        writer.write(b'You said: ' + line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main():
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    for text in ('hello', 'how are you', 'bye'):
        writer.write(text.encode() + b'\n')
        await writer.drain()
        if text != 'bye':
            print((await reader.readline()).decode().rstrip())
    print('server closed the connection:', await reader.read() == b'')
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


asyncio.run(main())
