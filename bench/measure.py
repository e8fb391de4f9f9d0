#!/usr/bin/env python3
"""Runs one command and prints its wall time and peak resident memory as one JSON line.

Usage: measure.py [--log FILE] CMD [ARG ...]

    {"seconds": 5.123, "max_rss_mib": 301.2, "exit": 0}

Wall time is measured with time.perf_counter around the child's whole life; peak RSS is
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss after the child was waited for: the largest
peak of this helper's waited-for descendants, i.e. of the command itself (or, for a shell
wrapper, of its largest process). The command's stdout and stderr go to FILE (default: this
helper's stderr), so stdout carries only the JSON line. Exits with the command's status.
"""

import json
import resource
import subprocess
import sys
import time


def main(argv):
    log = None
    if len(argv) >= 2 and argv[0] == "--log":
        log, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    sink = open(log, "ab") if log else sys.stderr
    try:
        started = time.perf_counter()
        status = subprocess.run(argv, stdout=sink, stderr=sink, check=False).returncode
        seconds = time.perf_counter() - started
    finally:
        if log:
            sink.close()
    # ru_maxrss is in KiB on Linux.
    rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": round(seconds, 3),
                      "max_rss_mib": round(rss_kib / 1024, 1),
                      "exit": status}))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
