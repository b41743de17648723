"""`python -m service.worker_main -Q QUEUES [--concurrency N]`: the worker processes that
`serve`, `run` and the benchmarks start. The same worker as `actionforge worker`, without
loading the CLI's commands (the web server, the API's schemas, the export formats) first, so a
worker, started or replaced, is ready sooner."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from service.worker import worker_cli


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="actionforge worker")
    parser.add_argument("-Q", "--queues", default="generate,verify")
    parser.add_argument("-c", "--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    worker_cli(args.queues, args.concurrency)


if __name__ == "__main__":
    main()
