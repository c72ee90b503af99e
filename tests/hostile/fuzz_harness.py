"""Load (and, when it loads, run) every file of a folder through portable, in this one process, and report per
file: "ok", "refused" (a PortableError) or "BAD" (any other exception, or more than 60 s). Started by
tests/test_fuzz_parsers.py under a time and memory limit: a crash kills this process and fails the test.

    python -m tests.hostile.fuzz_harness FOLDER RESULTS.json
"""
from __future__ import annotations

import json
import signal
import sys
import traceback
from pathlib import Path


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("more than 60 s")


def _inputs(model):
    import numpy as np

    feeds = {}
    for spec in model.signature.inputs:
        shape = [3] + [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape[1:]]
        feeds[spec.name] = np.full(shape, "a") if spec.is_string else np.ones(shape, dtype=spec.dtype)
    return feeds


def main(folder: str, results_path: str) -> None:
    import portable

    signal.signal(signal.SIGALRM, _alarm)
    results = {}
    for path in sorted(Path(folder).iterdir()):
        with open(results_path + ".running", "w") as f:
            f.write(str(path))
        signal.alarm(60)
        try:
            model = portable.load(path)
            model.run(_inputs(model))
            results[path.name] = "ok"
        except portable.PortableError:
            results[path.name] = "refused"
        except BaseException as exc:  # noqa: BLE001 - the point is to see anything else
            results[path.name] = "BAD " + "".join(traceback.format_exception(exc))[-2500:]
        finally:
            signal.alarm(0)
    Path(results_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
