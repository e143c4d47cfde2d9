"""fetch_limit.py - fetch ten pages from a local `python -m http.server`
with at most three requests in flight (a Semaphore)."""
import os
import subprocess
import sys
import tempfile

import asyncstreams as asyncio

LIMIT = 3
in_flight = 0
peak = 0


# listing: fetch
async def fetch(sem, port, path):
    global in_flight, peak
    async with sem:
        in_flight += 1
        peak = max(peak, in_flight)
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(f'GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'.encode())
        await writer.drain()
        status = (await reader.readline()).decode().split()[1]
        body = (await reader.read()).split(b'\r\n\r\n', 1)[1]
        writer.close()
        await writer.wait_closed()
        in_flight -= 1
        return status, len(body)
# end listing


async def main(port):
    sem = asyncio.Semaphore(LIMIT)
    paths = [f'/page{i}.txt' for i in range(10)]
    results = await asyncio.gather(*(fetch(sem, port, p) for p in paths))
    for path, (status, size) in zip(paths, results):
        print(path, status, size)
    print('most requests in flight:', peak)


with tempfile.TemporaryDirectory() as root:
    for i in range(10):
        with open(os.path.join(root, f'page{i}.txt'), 'w') as f:
            f.write('x' * (100 * i))
    httpd = subprocess.Popen(
        [sys.executable, '-u', '-m', 'http.server', '--bind', '127.0.0.1',
         '--directory', root, '0'],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        # "Serving HTTP on 127.0.0.1 port N (http://...) ..."
        port = int(httpd.stdout.readline().split()[5])
        asyncio.run(main(port))
    finally:
        httpd.terminate()
        httpd.wait()
        httpd.stdout.close()
