"""Entry point: ``python -m lab up|down|status``."""

import sys
from pathlib import Path

# The lab shares the GPU catalog with the plugins, which live in the checkout's
# own collection (.collections links it in under ansible_collections/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".collections"))

from lab.cli import main

sys.exit(main())
