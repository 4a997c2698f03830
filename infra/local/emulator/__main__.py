"""`python -m infra.local.emulator`: the emulator's command (its options in the package's docstring)."""

import sys

from infra.local.emulator import main

sys.exit(main())
