"""Run `portable` command lines in this one process (started by the tests under a time and memory limit) and
report, per command line, the exit code, stderr/stdout and whether an exception escaped the command.

    python -m tests.hostile.cli_harness CASES.json RESULTS.json

CASES.json is a list of argv lists. A crash (segfault) or a memory blow-up kills this process, which the test
sees as a failure; the results written so far say which command line was running.
"""
from __future__ import annotations

import json
import sys
import traceback


def main(cases_path: str, results_path: str) -> None:
    from click.testing import CliRunner

    from portable.cli import cli

    cases = json.loads(open(cases_path).read())
    results = []
    for argv in cases:
        with open(results_path + ".running", "w") as f:
            f.write(json.dumps(argv))
        r = CliRunner().invoke(cli, argv)
        escaped = None
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            escaped = "".join(traceback.format_exception(*r.exc_info))
        results.append({"argv": argv, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                        "escaped": escaped})
        with open(results_path, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
