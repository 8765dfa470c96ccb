"""uvicorn under cProfile, for `python -m bench.profile --calls`: profiling starts at SIGUSR2 (the end of
the load generator's warm-up) and the stats are written at SIGTERM, to `BENCH_CPROFILE_OUT`.

uvicorn re-raises the SIGTERM it handled once it has shut down, which would kill the process before
`python -m cProfile` writes anything: hence this wrapper."""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from typing import Any

OUT = os.environ["BENCH_CPROFILE_OUT"]
profile = cProfile.Profile()


def _stop(*_: Any) -> None:
    profile.disable()
    profile.dump_stats(OUT)
    os._exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGUSR2, lambda *_: profile.enable())
    sys.path.insert(0, os.getcwd())
    from uvicorn.main import main as uvicorn

    sys.argv = ["uvicorn", *sys.argv[1:]]
    uvicorn()


if __name__ == "__main__":
    main()
