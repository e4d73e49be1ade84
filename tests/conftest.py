"""Suite-wide settings.

Hypothesis: under CI (``CI=true``) the examples are derandomized, so a submission's run is reproducible and a
failure can be replayed locally with ``CI=true pytest ...``; locally every run explores new examples.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
