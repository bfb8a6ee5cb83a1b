"""``python -m netlens`` runs the same CLI as the ``netlens`` script."""

import sys

from netlens.cli import main

sys.exit(main())
