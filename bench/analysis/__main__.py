"""`python -m bench.analysis`: the command line lives in `run`, importable without running it."""

from bench.analysis.run import main

raise SystemExit(main())
