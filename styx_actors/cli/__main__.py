"""`python -m styx_actors.cli`: the same as the `styx` script."""

import sys

from styx_actors.cli import main

sys.exit(main())
