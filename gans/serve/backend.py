"""Everything the explorer uses from the rest of gans, in one place.

The server modules import from here only, so when the modules below move (sampling,
provenance, checkpoint reading and the TensorBoard reader are being regrouped into
subpackages) this file is the one to update. Nothing here is re-implemented: these are the
same functions `gans sample`, `gans card` and `gans bench` use.
"""

from __future__ import annotations

from gans import __version__  # noqa: F401
from gans.bench import read_events  # noqa: F401  (one TensorBoard scalar reader)
from gans.cache import cache_dir  # noqa: F401
from gans.classifiers.fashion_mnist import load_classifier  # noqa: F401
from gans.classifiers.fashion_mnist import to_classifier_input  # noqa: F401
from gans.data import CLASS_NAMES, class_names, load_images  # noqa: F401
from gans.errors import GansError  # noqa: F401
from gans.export import source_sha256  # noqa: F401
from gans.files import atomic_write  # noqa: F401
from gans.provenance import make_info, read_info, read_run_log, save_pil, to_pil  # noqa: F401
from gans.recipe import load_recipe, validate  # noqa: F401
from gans.sampling import (class_labels, generate, interpolation_frames, latents,  # noqa: F401
                           load_generator, read_checkpoint, resolve_class, seeded_noise,
                           style_mixing_grid, supports_style_mixing, supports_truncation,
                           write_animation)
