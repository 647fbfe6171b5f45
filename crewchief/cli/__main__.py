"""``python -m crewchief.cli``: the same as the ``crewchief`` command."""

import sys

from crewchief.cli.main import main

sys.exit(main())
