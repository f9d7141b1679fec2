"""`python -m wrapper`: the same entry point as the `fn-wrapper` console script."""

from wrapper.cli import main

raise SystemExit(main())
