"""python -m benchmarks run [--quick | --full] [--only NAME ...] | render RAW.json"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from benchmarks.e2e import COMMANDS
from benchmarks.forwarded import ROWS as FUSE_ROWS
from benchmarks.measure import FULL, QUICK, WATCHERS
from benchmarks.report import merge, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="build the trees, measure, write results/")
    size = run_parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10,000 files (the default)")
    size.add_argument("--full", action="store_true", help="10,000 and 100,000 files")
    names = [w.name for w in WATCHERS] + [f"e2e-{c.name}" for c in COMMANDS] + list(FUSE_ROWS)
    run_parser.add_argument(
        "--only", nargs="+", choices=names, metavar="NAME", help=f"a subset of: {', '.join(names)}"
    )
    render_parser = sub.add_parser(
        "render", help="print the tables of raw JSON files (later files' rows replace earlier)"
    )
    render_parser.add_argument("raw", type=Path, nargs="+")
    render_parser.add_argument(
        "--write", action="store_true", help="also write results/latest.md and latest.json"
    )
    args = parser.parse_args(argv)

    if args.command == "render":
        results = merge([json.loads(path.read_text()) for path in args.raw])
        markdown = render(results)
        sys.stdout.write(markdown)
        if args.write:
            results_dir = Path(__file__).resolve().parent / "results"
            (results_dir / "latest.json").write_text(json.dumps(results, indent=1))
            (results_dir / "latest.md").write_text(markdown)
        return 0
    from benchmarks.run import run

    # Started in the background by a non-interactive shell, we inherit SIGINT ignored, and so
    # would every supervisor and child we start: their SIGINT-based restarts would then wait for
    # their kill timeouts. A Python handler is reset to the default in exec'd children.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    run(FULL if args.full else QUICK, args.only, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
