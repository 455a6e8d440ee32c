"""`python -m styx_actors.cli`: the API client's commands (`python -m styx_server.cli` adds `serve`)."""

import sys

from styx_actors.cli import main

sys.exit(main())
