"""CPython 3.13 asyncio clients for our echo server (tests/interop_server.sh).

    interop_echo_clients.py echo PORT
        The seed: three clients at once (asyncio.gather), each opens a
        connection, sends one line, reads the echo, closes.  Prints
        "ok: <message>" per client; exits 1 on any mismatch.
    interop_echo_clients.py hold PORT
        One client checks an echo, prints "HELD", then waits for the server
        to close the connection (as its shutdown does) and prints "EOF".
"""
import asyncio
import sys


async def tcp_echo_client(port, message):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message.encode())
    await writer.drain()
    data = await reader.readline()
    writer.close()
    await writer.wait_closed()
    if data.decode() != message:
        print(f"FAIL: sent {message!r}, received {data.decode()!r}")
        return False
    print(f"ok: {message.strip()}")
    return True


async def echo(port):
    results = await asyncio.gather(
        *(tcp_echo_client(port, f"Hello World from client {i}!\n") for i in range(3)))
    return 0 if all(results) else 1


async def hold(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"are you there?\n")
    await writer.drain()
    if await reader.readline() != b"are you there?\n":
        print("FAIL: no echo")
        return 1
    print("HELD", flush=True)
    rest = await reader.read()          # until the server closes
    writer.close()
    await writer.wait_closed()
    print("EOF" if rest == b"" else f"FAIL: unexpected {rest!r}")
    return 0 if rest == b"" else 1


async def main(mode, port):
    async with asyncio.timeout(15):
        return await (echo if mode == "echo" else hold)(port)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
