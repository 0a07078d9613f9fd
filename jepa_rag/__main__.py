"""``python -m jepa_rag`` = the ``jepa-rag`` command."""

import sys

from .cli import main

sys.exit(main())
