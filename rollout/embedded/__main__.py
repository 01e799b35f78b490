"""`python -m rollout.embedded [options]`: the same as `lachesis policy serve [options]`."""

import sys

from . import main

sys.exit(main(sys.argv[1:]))
