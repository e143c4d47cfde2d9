"""https_status.py - is a site up?  HEAD over TLS, print the status line.

    python3 https_status.py [HOST [PORT]]     (default: example.org 443)

ssl=True is asyncio's: the system's trust store, the host name checked.
The tests point SSL_CERT_FILE at their own CA and serve on a local port."""
import sys

import asyncstreams as asyncio


# listing: status
async def status(host, port=443):
    reader, writer = await asyncio.open_connection(host, port, ssl=True)
    writer.write(f'HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n'.encode())
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return line.decode('latin-1').rstrip('\r\n')
# end listing


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else 'example.org'
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 443
    print(f'{host}: {asyncio.run(status(host, port))}')


if __name__ == '__main__':
    main()
