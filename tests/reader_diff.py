"""reader_diff.py - differential test: the C StreamReader against CPython's.

Generates random reader scripts (see tests/reader_trace.c for the format),
runs each through CPython's asyncio.StreamReader here and through the C
reader (the reader_trace program), and fails on the first difference in
results, errors (type, message, partial, expected, consumed), cancellations
or the final buffer.

    python3.13 reader_diff.py PATH/TO/reader_trace [count] [seed]

Scripts avoid the few places where the C reader differs on purpose
(reader.h, "Differences from CPython"): no feed after EOF, no cancel or
exception while read(-1) waits, and a loop turn before an exception or a
second read while a read may wait (so a woken read has retried first).
"""
import asyncio
import random
import subprocess
import sys

ALPHABET = b'ab\n\r'


def gen(rng):
    out = [f'limit {rng.randint(1, 12)}']
    eof = False
    pending = None          # kind of the read that may still be waiting
    nread = 0
    for _ in range(rng.randint(1, 40)):
        choice = rng.random()
        if choice < 0.35 and not eof:
            n = rng.choice([0, 1, 1, 2, 3, 5, 8, 13])
            data = bytes(rng.choice(ALPHABET) for _ in range(n))
            out.append(f'feed {data.hex() or "-"}')
        elif choice < 0.45:
            out.append('turn')
        elif choice < 0.48 and not eof:
            out.append('eof')
            eof = True
        elif choice < 0.52 and pending != 'read-1':
            if pending is not None:
                out.append('turn')   # let a woken read retry first
            out.append(f'exc boom{rng.randint(0, 9)}')
        elif choice < 0.57 and pending is not None and pending != 'read-1':
            out.append(f'cancel {nread - 1}')
            pending = None
        elif pending is None or rng.random() < 0.1 and pending != 'read-1':
            # A new read (rarely a second one while one waits: busy error).
            if pending is not None:
                out.append('turn')   # let a woken read retry first
            kind = rng.choice(['read', 'readexactly', 'readline', 'readuntil',
                               'readuntil'])
            if kind == 'read':
                n = rng.choice([-1, 0, 1, 3, 7, 30])
                out.append(f'read {n}')
                kind = 'read-1' if n < 0 else kind
            elif kind == 'readexactly':
                out.append(f'readexactly {rng.choice([-1, 0, 1, 2, 5, 11])}')
            elif kind == 'readline':
                out.append('readline')
            else:
                r = rng.random()
                if r < 0.03:
                    out.append('readuntil ()')
                else:
                    seps = []
                    for _ in range(rng.choice([1, 1, 1, 2, 3])):
                        n = rng.choice([0, 1, 1, 2, 3]) if r < 0.1 else rng.choice([1, 1, 2, 3])
                        seps.append(bytes(rng.choice(ALPHABET) for _ in range(n)).hex() or '-')
                    out.append('readuntil ' + ','.join(seps))
            if pending is None:
                pending = kind
            nread += 1
        else:
            out.append('turn')
    return out


def describe(i, task):
    if task.cancelled():
        return f'{i} CANCELLED'
    exc = task.exception()
    if exc is None:
        return f'{i} OK {task.result().hex() or "-"}'
    name = type(exc).__name__
    text = f'{i} ERR {name} {exc}'
    if isinstance(exc, asyncio.IncompleteReadError):
        exp = 'None' if exc.expected is None else exc.expected
        text += f' partial={exc.partial.hex() or "-"} expected={exp}'
    elif isinstance(exc, asyncio.LimitOverrunError):
        text += f' consumed={exc.consumed}'
    return text


async def run_py(script):
    lines = []
    reader = None
    tasks = []
    reported = set()

    def report():
        for i, t in enumerate(tasks):
            if i not in reported and t.done():
                reported.add(i)
                lines.append(describe(i, t))

    for cmd in script:
        op, _, arg = cmd.partition(' ')
        coro = None
        if op == 'limit':
            reader = asyncio.StreamReader(limit=int(arg))
        elif op == 'feed':
            reader.feed_data(b'' if arg == '-' else bytes.fromhex(arg))
        elif op == 'eof':
            reader.feed_eof()
        elif op == 'exc':
            reader.set_exception(ConnectionResetError(arg))
        elif op == 'turn':
            await asyncio.sleep(0)
        elif op == 'cancel':
            tasks[int(arg)].cancel()
            await asyncio.sleep(0)
        elif op == 'read':
            coro = reader.read(int(arg))
        elif op == 'readexactly':
            coro = reader.readexactly(int(arg))
        elif op == 'readline':
            coro = reader.readline()
        elif op == 'readuntil':
            if arg == '()':
                sep = ()
            else:
                parts = [b'' if p == '-' else bytes.fromhex(p) for p in arg.split(',')]
                sep = parts[0] if len(parts) == 1 else tuple(parts)
            coro = reader.readuntil(sep)
        if coro is not None:
            tasks.append(asyncio.ensure_future(coro))
            await asyncio.sleep(0)
        report()
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.sleep(0)
    report()
    buf = bytes(reader._buffer)
    lines.append(f'buffer {buf.hex() or "-"} at_eof={int(reader.at_eof())}')
    return lines


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    trace = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20261122
    rng = random.Random(seed)
    for n in range(count):
        script = gen(rng)
        want = asyncio.run(run_py(script))
        got = subprocess.run([trace], input='\n'.join(script) + '\n',
                             capture_output=True, text=True)
        if got.returncode != 0 or got.stdout.splitlines() != want:
            print(f'reader_diff: script {n} differs (seed {seed})')
            print('--- script'); print('\n'.join(script))
            print('--- CPython'); print('\n'.join(want))
            print('--- C (exit %d)' % got.returncode); print(got.stdout + got.stderr)
            return 1
    print(f'reader_diff: {count} random scripts, C and CPython {sys.version.split()[0]} agree')
    return 0


if __name__ == '__main__':
    sys.exit(main())
