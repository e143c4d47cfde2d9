"""reader_bench.py - CPython's asyncio.StreamReader on the work of
reader_bench.c: N MiB of 100-byte lines fed in random-sized chunks (one
chunk per loop turn, the same xorshift64* sizes), read back with readline()
or with readexactly() of large blocks.

    python3.13 reader_bench.py readline|readexactly [MiB] [block] [seed]
"""
import asyncio
import resource
import sys
import time

LINE = 100
MAXCHUNK = 128 * 1024
MASK = (1 << 64) - 1


def rng(seed):
    s = seed
    while True:
        s ^= s >> 12
        s ^= (s << 25) & MASK
        s ^= s >> 27
        yield (s * 2685821657736338717) & MASK


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def main(mode, total, block, seed):
    reader = asyncio.StreamReader(limit=2 ** 16)
    pattern = bytes(
        (10 if i % LINE == LINE - 1 else ord('a') + i % 26)
        for i in range(MAXCHUNK + LINE))
    view = memoryview(pattern)

    async def feeder():
        fed = 0
        sizes = rng(seed)
        while fed < total:
            n = 1 + next(sizes) % MAXCHUNK
            n = min(n, total - fed)
            start = fed % LINE
            reader.feed_data(view[start:start + n])
            fed += n
            await asyncio.sleep(0)   # one chunk per loop turn
        reader.feed_eof()

    got = items = 0
    task = asyncio.get_running_loop().create_task(feeder())
    if mode == 'readline':
        while True:
            line = await reader.readline()
            if not line:
                break
            if len(line) != LINE or line[-1] != 10:
                raise SystemExit('bad line')
            got += len(line)
            items += 1
    else:
        while True:
            try:
                data = await reader.readexactly(block)
            except asyncio.IncompleteReadError as e:
                got += len(e.partial)
                break
            got += len(data)
            items += 1
    await task
    return got, items


def run():
    if len(sys.argv) < 2 or sys.argv[1] not in ('readline', 'readexactly'):
        raise SystemExit(__doc__)
    mode = sys.argv[1]
    total = (int(sys.argv[2]) if len(sys.argv) > 2 else 1024) << 20
    total -= total % LINE
    block = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 88172645463325252
    t0, c0 = time.monotonic(), cpu()
    got, items = asyncio.run(main(mode, total, block, seed))
    t1, c1 = time.monotonic(), cpu()
    if got != total:
        raise SystemExit(f'FAILED: got {got} of {total} bytes')
    print(f'CPython {sys.version.split()[0]} {mode}: {got} bytes, {items} '
          f'{"blocks" if mode == "readexactly" else "lines"}, {t1 - t0:.3f} s wall, '
          f'{c1 - c0:.3f} s CPU, {got / (t1 - t0) / 2**20:.1f} MiB/s')


if __name__ == '__main__':
    run()
