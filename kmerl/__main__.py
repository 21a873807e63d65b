import sys

from kmerl.cli import main

if __name__ == "__main__":  # ingest workers are spawned and re-import this module
    sys.exit(main())
