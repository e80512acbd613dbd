"""A local emulator of the Compute Engine v1 REST API.

Run it with ``python -m lab.emulator --help``, or in tests::

    from lab.emulator import ComputeEmulator

    with ComputeEmulator(port=0) as emulator:
        emulator.generate(instances=20, zones=2, projects=1)
        ...  # point clients at emulator.url
"""

from .faults import FaultRule
from .fleet import Fleet, generate_fleet
from .server import ComputeEmulator

__all__ = ["ComputeEmulator", "FaultRule", "Fleet", "generate_fleet"]
