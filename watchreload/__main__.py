"""python -m watchreload"""

import sys

from watchreload.cli import main

if __name__ == "__main__":
    sys.exit(main())
