"""`python -m bot.cli` runs the `liaison` command."""

import sys

from bot.cli import main

sys.exit(main())
