"""Everything the explorer uses from the rest of gans, in one place.

The server modules import from here only: the explorer's dependencies on the rest of gans
are this list. Nothing here is re-implemented: these are the same functions `gans sample`,
`gans card` and `gans bench` use.
"""

from __future__ import annotations

from gans import __version__  # noqa: F401
from gans.cache import cache_dir  # noqa: F401
from gans.evaluation.classifiers.fashion_mnist import load_classifier  # noqa: F401
from gans.evaluation.classifiers.fashion_mnist import to_classifier_input  # noqa: F401
from gans.data import CLASS_NAMES, as_signed, as_unit, class_names  # noqa: F401
from gans.data import is_paired, load_images  # noqa: F401
from gans.errors import GansError  # noqa: F401
from gans.sampling.export import source_sha256  # noqa: F401
from gans.files import atomic_write  # noqa: F401
from gans.runlog import read_run  # noqa: F401  (the one TensorBoard reader)
from gans.sampling.provenance import make_info, read_info, save_pil, to_pil  # noqa: F401
from gans.recipe import load_recipe, validate  # noqa: F401
from gans.sampling.checkpoint import load_generator, read_checkpoint  # noqa: F401
from gans.sampling.project import (DEFAULT_DISTANCE, Latent, ProjectOptions,  # noqa: F401
                                   load_target, make_distance, project, toward_class,
                                   variations)
from gans.sampling.generate import (class_labels, generate, interpolation_frames,  # noqa: F401
                                    latents, mixing_layers, resolve_class, seeded_noise,
                                    sketch_input, style_mixing_grid,
                                    supports_style_mixing, supports_truncation, translate,
                                    write_animation)
