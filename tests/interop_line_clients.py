"""CPython 3.13 asyncio clients for examples/you_said and examples/chat_server
(tests/interop_server.sh).

    interop_line_clients.py you_said PORT
        Two clients at once, three lines each; every reply must be
        "You said: <line>".
    interop_line_clients.py chat PORT
        Two clients join; once both are in, each says one line; each must
        hear the other's line as "client N: <line>", with N from the
        other's welcome.
Prints "ok: ..." per check; exits 1 on any failure.
"""
import asyncio
import re
import sys


async def you_said_client(port, k):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ok = True
    for i in range(3):
        line = f"line {i} from python client {k}\n"
        writer.write(line.encode())
        await writer.drain()
        reply = (await reader.readline()).decode()
        if reply != "You said: " + line:
            print(f"FAIL: sent {line!r}, got {reply!r}")
            ok = False
    writer.close()
    await writer.wait_closed()
    if ok:
        print(f"ok: python client {k} got three right replies")
    return ok


async def you_said(port):
    results = await asyncio.gather(*(you_said_client(port, k) for k in (1, 2)))
    return 0 if all(results) else 1


async def chat(port):
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    names = []
    for reader, _ in conns:
        welcome = (await reader.readline()).decode()
        m = re.match(r"\*\*\* welcome, you are (client \d+);", welcome)
        if not m:
            print(f"FAIL: welcome {welcome!r}")
            return 1
        names.append(m.group(1))
    for (_, writer), name in zip(conns, names):
        writer.write(f"hi, this is {name}\n".encode())
        await writer.drain()

    async def hear(reader, other):
        want = f"{other}: hi, this is {other}\n"
        while True:
            line = (await reader.readline()).decode()
            if line == want:
                return True
            if not line.startswith("*** "):
                print(f"FAIL: expected {want!r}, got {line!r}")
                return False

    heard = await asyncio.gather(hear(conns[0][0], names[1]), hear(conns[1][0], names[0]))
    for _, writer in conns:
        writer.close()
        await writer.wait_closed()
    if all(heard):
        print(f"ok: {names[0]} and {names[1]} heard each other")
    return 0 if all(heard) else 1


async def main(mode, port):
    async with asyncio.timeout(15):
        return await (you_said if mode == "you_said" else chat)(port)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
