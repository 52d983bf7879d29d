"""The one folder where gans keeps what it derives: extracted data, Inception weights, FID
reference statistics. `$GANS_CACHE_DIR`, or ~/.cache/gans."""

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("GANS_CACHE_DIR") or "~/.cache/gans").expanduser()
