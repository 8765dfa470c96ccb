"""`python -m bench` (or `make bench`): see bench/driver.py and `python -m bench --help`."""

from bench.driver import main

raise SystemExit(main())
