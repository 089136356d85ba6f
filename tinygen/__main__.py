"""`python -m tinygen ...` runs the command line, as `tinygen ...` does."""
import sys

from .cli import main

sys.exit(main())
