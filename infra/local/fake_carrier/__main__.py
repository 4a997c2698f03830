"""`python -m infra.local.fake_carrier`: the fake carrier's command (its options in the package's docstring)."""

import sys

from infra.local.fake_carrier import main

sys.exit(main())
