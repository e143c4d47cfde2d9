"""The Python example programs (examples/*.py): each runs to completion on
asyncstreams, and prints exactly what the same file prints on asyncio once
its import line says `import asyncio` (the programs port unchanged)."""
import os
import subprocess
import sys
import tempfile
import unittest

SRCDIR = os.environ.get('AS_SRCDIR') or os.path.join(os.path.dirname(__file__), '..', '..', '..')
EXAMPLES = os.path.join(SRCDIR, 'examples')
NAMES = ['echo', 'you_said', 'line_reader', 'large_send', 'timeouts', 'fetch_limit']
IMPORT = 'import asyncstreams as asyncio\n'


def run(path, dev=True):
    # asyncio's own run is not in dev mode: its slow-callback warnings
    # under a loaded `make -j` would be noise, not a difference.
    p = subprocess.run([sys.executable] + (['-X', 'dev'] if dev else []) + [path],
                       capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class Examples(unittest.TestCase):
    pass


def make(name):
    def test(self):
        path = os.path.join(EXAMPLES, name + '.py')
        with open(path) as f:
            text = f.read()
        self.assertIn(IMPORT, text)
        rc, out, err = run(path)
        self.assertEqual((rc, err), (0, ''), out)
        self.assertTrue(out)
        with tempfile.TemporaryDirectory() as d:
            ported = os.path.join(d, name + '.py')
            with open(ported, 'w') as f:
                f.write(text.replace(IMPORT, 'import asyncio\n'))
            rc2, out2, err2 = run(ported, dev=False)
        self.assertEqual((rc2, err2), (0, ''), out2)
        self.assertEqual(out, out2)
    return test


for _n in NAMES:
    setattr(Examples, 'test_' + _n, make(_n))

if __name__ == '__main__':
    unittest.main()
