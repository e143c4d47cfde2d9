"""Per-operation cost of the Python binding's hot path, against asyncio.

Two workloads, each on asyncio and on asyncstreams, same code:
  ready:    readline() on lines already buffered (no loop turn per line);
  pingpong: one task awaits readline() while another feeds one line per
            loop turn (a wake-up, a task step and a loop turn per line),
            the shape of an echo server's read side.
Prints ns per line and the ratio.  Not run by make check; run it with the
staged package on PYTHONPATH (see bench/README or the chapter):
  PYTHONPATH=bindings/python/pkg LD_LIBRARY_PATH=lib/.libs python3 bench/py_reader_bench.py
"""
import asyncio
import sys
import time

import asyncstreams

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
LINE = b'x' * 60 + b'\n'


async def ready(mod):
    r = mod.StreamReader()
    r.feed_data(LINE * N)
    t0 = time.perf_counter()
    for _ in range(N):
        await r.readline()
    return time.perf_counter() - t0


async def pingpong(mod):
    r = mod.StreamReader()
    n = N // 4

    async def feeder():
        for _ in range(n):
            r.feed_data(LINE)
            await mod.sleep(0)

    t0 = time.perf_counter()
    f = mod.create_task(feeder())
    for _ in range(n):
        await r.readline()
    await f
    return (time.perf_counter() - t0) * 4


def main():
    for name in ('ready', 'pingpong'):
        res = {}
        for mod in (asyncio, asyncstreams, asyncio, asyncstreams):  # warm-up + measured
            res[mod.__name__] = mod.run(globals()[name](mod))
        a, s = res['asyncio'], res['asyncstreams']
        print(f'{name:9s} asyncio {a / N * 1e9:8.0f} ns/line   asyncstreams '
              f'{s / N * 1e9:8.0f} ns/line   ratio {a / s:5.2f}x')


if __name__ == '__main__':
    main()
