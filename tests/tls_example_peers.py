"""CPython 3.13 peers for the TLS examples (tests/tls_examples.sh).

    tls_example_peers.py https CERT KEY STATUS
        An HTTPS server on 127.0.0.1, port 0: prints "PORT n", then answers
        every HEAD / with STATUS (HTTP/1.1, Connection: close), until killed.
    tls_example_peers.py echo PORT CAFILE
        Three TLS clients at once (ssl=, verifying against CAFILE): each
        sends two lines, reads the echoes, closes.  "ok: ..." per client.
    tls_example_peers.py starttls PORT CAFILE
        One plaintext client: "STARTTLS", expects "220 go ahead", upgrades
        with writer.start_tls(), then checks an echo.  Then one that does not
        say STARTTLS and must be refused with "530".
"""
import asyncio
import http.server
import ssl
import sys


def https(cert, key, status):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self):
            self.send_response(int(status))
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        def log_message(self, *args):
            pass

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
    return 0


def client_context(cafile):
    return ssl.create_default_context(cafile=cafile)


async def echo_one(port, cafile, i):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(cafile), server_hostname="localhost")
    lines = [f"client {i} line {j}\n".encode() for j in range(2)]
    for line in lines:
        writer.write(line)
    await writer.drain()
    got = [await reader.readline() for _ in lines]
    version = writer.get_extra_info("ssl_object").version()
    writer.close()
    await writer.wait_closed()
    if got != lines:
        print(f"FAIL: sent {lines!r}, received {got!r}")
        return False
    print(f"ok: client {i} echoed over {version}")
    return True


async def echo(port, cafile):
    results = await asyncio.gather(*(echo_one(port, cafile, i) for i in range(3)))
    return 0 if all(results) else 1


async def starttls(port, cafile):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"STARTTLS\r\n")
    answer = await reader.readline()
    if answer != b"220 go ahead\r\n":
        print(f"FAIL: STARTTLS answered {answer!r}")
        return 1
    await writer.start_tls(client_context(cafile), server_hostname="localhost")
    writer.write(b"secret after STARTTLS\n")
    got = await reader.readline()
    writer.close()
    await writer.wait_closed()
    if got != b"secret after STARTTLS\n":
        print(f"FAIL: after start_tls, received {got!r}")
        return 1
    print("ok: STARTTLS, then an echo over TLS")

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"HELLO\r\n")
    answer = await reader.readline()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    if not answer.startswith(b"530") or rest != b"":
        print(f"FAIL: no STARTTLS: got {answer!r} then {rest!r}")
        return 1
    print("ok: a client that does not say STARTTLS is refused")
    return 0


def main(argv):
    if argv[1] == "https":
        return https(argv[2], argv[3], argv[4])
    if argv[1] == "echo":
        return asyncio.run(echo(int(argv[2]), argv[3]))
    if argv[1] == "starttls":
        return asyncio.run(starttls(int(argv[2]), argv[3]))
    print(f"usage: {argv[0]} https|echo|starttls ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
