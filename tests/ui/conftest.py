"""UI tests: times are shown in local time, so pin the zone for deterministic screens."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()
# Let UI tests import their recording module.
sys.path.insert(0, str(Path(__file__).parent))
