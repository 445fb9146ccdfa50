"""Kept so that git hooks installed by watchreload 0.1.0 (`-m watchreload.githooks`) still run."""

import sys

from watchreload.vcs import main

if __name__ == "__main__":
    sys.exit(main())
