"""`python -m latentmorph.cli`: the same as the `latentmorph` command."""

import sys

from . import main

sys.exit(main())
