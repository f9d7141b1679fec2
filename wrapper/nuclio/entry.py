"""A file a Nuclio processor can run in place of its `_nuclio_wrapper.py`.

Point the processor at it with `NUCLIO_PYTHON_WRAPPER_PATH=<this file>`; it runs
`fn-wrapper nuclio` with the processor's own command line. Run as a script, its folder
would come first on sys.path (shadowing modules by our names): it is taken off first.
"""

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

from wrapper.cli import main  # after the path fix above

if __name__ == "__main__":
    raise SystemExit(main(["nuclio", *sys.argv[1:]]))
