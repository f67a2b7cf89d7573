"""``python -m bench --rows 1000000 --scenario night`` (same options as ``credit-etl bench``)."""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
