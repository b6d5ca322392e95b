"""The cyclic garbage collector, set for a long-running process that holds a big fleet.

With CPython's defaults (700, 10, 10) a full collection walks every tracked object
(the imported modules' and the fleet's parsed reports alike) each time the older
generations grow by a quarter. At start-up, while a catalog sync brings 100,000 numbers'
reports, that was about a sixth of the server's CPU, spent finding no garbage: the
objects were all alive.

`settle` runs once the process has built what it keeps (imports, the app, its
components):

- one collection, then `gc.freeze()`: what exists now is never walked again (it is still
  freed by reference counting as usual; only cycles among those objects stay);
- a young generation of `YOUNG_THRESHOLD` allocations instead of 700, so the objects of
  one batch of work (a page of numbers, a chunk of reports) die before they are
  collected, and fewer of them are promoted to be walked again by full collections.

Memory is bounded as before: a young collection still runs every `YOUNG_THRESHOLD`
container allocations, and full collections still run, only less often.

Only the server's workers and the CLI's long commands call it, never `create_app` itself:
a test process builds hundreds of apps, and freezing each would keep their cycles.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
# Young collections per collection of the middle generation, and middle ones per full one
# (the full one also waits for the old generation to grow by a quarter, as always).
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 10


def settle() -> None:
    """Collect once, freeze what survives, and widen the young generation (see above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
