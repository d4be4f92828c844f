"""``python -m pytest_qase``."""

import sys

from .cli import main

sys.exit(main())
