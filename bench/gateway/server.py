"""Start the benchmark server the way `wahealth serve` starts the gateway, on `bench_app`.

Storage is migrated and the config applied once, then granian serves with the same
options `wahealth serve` passes; only the application target differs (it adds the bare
route). Run by `run.py` with WAHEALTH_CONFIG, WAHEALTH_BENCH_BARE_KEY and PYTHONPATH set.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces

from wahealth.app import prepare_storage
from wahealth.settings import load_settings


def main() -> None:
    settings = load_settings(Path(os.environ["WAHEALTH_CONFIG"]))
    asyncio.run(prepare_storage(settings))
    Granian(
        "bench_app:factory",
        address=settings.server.host,
        port=settings.server.port,
        interface=Interfaces.ASGI,
        workers=settings.server.workers,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
