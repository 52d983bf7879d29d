"""`gans eval`: a checkpoint's generator against a reference set, every figure with its protocol.

Metrics (names as `--metrics` takes them):
  fid       Fréchet Inception Distance (torchmetrics)
  kid       Kernel Inception Distance (torchmetrics), mean and std over subsets
  pr        improved precision and recall, k=3 (Kynkäänniemi et al. 2019)
  dc        density and coverage, k=5 (Naeem et al. 2020)
  coverage  class coverage: share of samples per class under a dataset classifier, classes
            covered and KL(real || generated); Fashion-MNIST only (its classifier ships here).
            For a class-conditional model also, per class, the share of the images generated
            for that class that the classifier puts in it
  intra_fid class-conditional models: FID between the images generated for each class and the
            real images of that class, per class and their mean (Miyato & Koyama 2018)
  l1        image-to-image models (pix2pix): mean absolute difference per pixel between each
            output and its own target, pixels in [0, 1]
  class_accuracy  image-to-image models on Fashion-MNIST edges: share of outputs that the
            dataset classifier puts in the class of their input, beside its accuracy on the
            targets themselves
For an image-to-image model the outputs are made from the reference split's inputs (its
edges) and compared with that split's images: FID, KID, L1 and class accuracy by default.
"""

from __future__ import annotations

import importlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from gans.evaluation import manifold
from gans.evaluation.coverage import class_coverage
from gans.data import Images, class_names, load_images
from gans.errors import GansError
from gans.files import atomic_write
from gans.evaluation.inception import EXTRACTOR_NAME, PRECISIONS, inception, \
    resolve_inception_weights, to_uint8_rgb
from gans.evaluation.fid import RESIZE, FeaturesAsInput, feature_fid, features_of, real_features, \
    real_key, subset
from gans.recipe import INCEPTION_BATCH_SIZE, DataSection
from gans.sampling.checkpoint import load_generator
from gans.sampling.generate import latents

METRICS = ("fid", "kid", "pr", "dc", "coverage", "intra_fid", "l1", "class_accuracy")
PAIRED_METRICS = ("fid", "kid", "pr", "dc", "l1", "class_accuracy")
PAIRED_DEFAULT = ("fid", "kid", "l1", "class_accuracy")
CLASSIFIERS = {"fashion-mnist": "gans.evaluation.classifiers.fashion_mnist"}
KID_SUBSET_SIZE = 1000
KID_SUBSETS = 100


@dataclass
class EvalOptions:
    metrics: Optional[tuple] = None  # None: every metric that applies to the checkpoint
    num_fake: int = 10000
    reference: Optional[str] = None  # train | test | a folder; default: test where there is one
    num_real: Optional[int] = None  # default: the whole reference set
    batch_size: int = INCEPTION_BATCH_SIZE
    seed: int = 0
    use_cache: bool = True
    use_ema: bool = True
    device: Optional[str] = None
    trust_checkpoint: bool = False  # allow a full unpickle (it can run the file's code)
    precision: str = "fp32"  # of Inception; reported figures want fp32 (bf16 moves FID a little)
    compile: bool = False  # Inception compiled for inference: faster from a few thousand images


def parse_metrics(text: str) -> tuple:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise GansError(f"--metrics: unknown metric {unknown[0] if unknown else '(none)'!r}; "
                        f"choose from {','.join(METRICS)}")
    return names


def _reference_images(data: DataSection, reference: Optional[str]) -> tuple[Images, DataSection,
                                                                               str]:
    """(images, the data section they came from, split name) for --reference."""
    if reference not in (None, "train", "test"):
        folder = Path(reference)
        if not folder.is_dir():
            raise GansError(f"--reference {reference}: not train, test or a folder of images")
        section = DataSection(name="folder", root=str(folder), resolution=data.resolution,
                              channels=data.channels)
        return load_images(section), section, "folder"
    split = reference or ("train" if data.name == "folder" else "test")
    section = DataSection(**{**data.__dict__, "limit": None})
    try:
        return load_images(section, split=split), section, split
    except GansError as exc:
        raise GansError(f"the checkpoint's dataset cannot be loaded for reference ({exc}); "
                        f"pass --reference DIR with real images to compare with") from None


def evaluate(checkpoint: Path, options: EvalOptions) -> dict:
    """Compute the chosen metrics; returns {figure name: {value, protocol fields...}}."""
    if options.num_fake < 2:
        raise GansError(f"--num-fake must be at least 2 (FID needs a covariance), "
                        f"got {options.num_fake}")
    if options.num_real is not None and options.num_real < 2:
        raise GansError(f"--num-real must be at least 2, got {options.num_real}")
    if options.batch_size < 1:
        raise GansError(f"--batch-size must be at least 1, got {options.batch_size}")
    if options.precision not in PRECISIONS:
        raise GansError(f"--precision must be {' or '.join(PRECISIONS)}, "
                        f"got {options.precision!r}")
    device = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    generator, recipe, weights_kind = load_generator(checkpoint, use_ema=options.use_ema,
                                                       trust=options.trust_checkpoint)
    generator.to(device)
    if getattr(generator, "translates_images", False):
        return _evaluate_paired(checkpoint, generator, recipe, weights_kind, options, device)
    metrics = set(options.metrics or METRICS)
    chosen = options.metrics is not None
    for name in ("l1", "class_accuracy"):
        if name in metrics and chosen:
            raise GansError(f"--metrics {name} compares outputs with their targets and needs an "
                            "image-to-image checkpoint (recipes/pix2pix/); drop it from --metrics")
        metrics.discard(name)
    classifier_module = CLASSIFIERS.get(recipe.data.name)
    by_folder = options.reference not in (None, "train", "test")
    if "coverage" in metrics and (classifier_module is None or by_folder):
        if chosen and classifier_module is None:
            per_class = " (intra_fid compares each class with its own images)" \
                if class_names(recipe.data) else ""
            raise GansError(f"--metrics coverage needs a classifier for the dataset; gans ships "
                            f"one for {', '.join(CLASSIFIERS)}, not {recipe.data.name!r}; "
                            f"drop coverage from --metrics{per_class}")
        if chosen:
            raise GansError("--metrics coverage compares with the dataset's own labels; use "
                            "--reference train or test, or drop coverage from --metrics")
        metrics.discard("coverage")  # the default set takes what applies
    names = class_names(recipe.data)
    if "intra_fid" in metrics and (not names or by_folder):
        if chosen and not names:
            raise GansError("--metrics intra_fid needs a class-conditional checkpoint (trained "
                            "with data.conditional: true); drop intra_fid from --metrics")
        if chosen:
            raise GansError("--metrics intra_fid compares with the dataset's own labels; use "
                            "--reference train or test, or drop intra_fid from --metrics")
        metrics.discard("intra_fid")

    images, section, split = _reference_images(recipe.data, options.reference)
    num_real = min(options.num_real or len(images.pixels), len(images.pixels))
    reference = {"dataset": images.description, "split": split,
                 "resolution": recipe.data.resolution}
    generated_by = {"generator": f"{checkpoint} ({weights_kind} weights)", "seed": options.seed}
    results: dict = {}

    extractor = real = protocol = None
    if metrics & {"fid", "kid", "pr", "dc", "intra_fid"}:
        weights = resolve_inception_weights(recipe.metrics.inception_weights)
        extractor = inception(weights, options.precision, options.compile, device)
        key = real_key(section, split, images, weights, num_real, options.precision)
        real, _ = real_features(images, key, extractor, options.batch_size, options.use_cache)
        protocol = {"extractor": EXTRACTOR_NAME, "weights_sha256": weights.sha256,
                    "num_fake": options.num_fake, "num_real": num_real,
                    "reference": reference, "resize": RESIZE, "precision": options.precision,
                    **generated_by}
    classifier = classifier_lib = None
    if "coverage" in metrics:
        classifier_lib = importlib.import_module(classifier_module)
        classifier = classifier_lib.load_classifier(device=device)
    fake_labels = torch.arange(options.num_fake) % len(names) if names else None
    fake, predicted = _generated(generator, extractor, classifier, options, device, fake_labels)

    if real is not None:
        results.update(feature_metrics(metrics, real, fake, protocol, options.seed))
    if "coverage" in metrics:
        if images.labels is None:
            raise GansError("--metrics coverage needs labelled reference images; "
                            "drop coverage from --metrics")
        names = list(classifier_lib.CLASS_NAMES)
        report = class_coverage(predicted, images.labels, len(names), names)
        results["class_coverage"] = {
            "value": report["classes_covered"], **report,
            "extractor": f"{classifier_module} classifier",
            "weights_sha256": classifier_lib.weights_sha256(), "num_fake": options.num_fake,
            "num_real": len(images.labels), "reference": reference,
            "resize": "to 28x28 inside the classifier", **generated_by}
        if fake_labels is not None:
            # Whether each class looks like itself: the part of coverage a conditional model
            # controls. Classifier mistakes keep it below 1 even for real images.
            per_class = {name: (predicted[fake_labels == c] == c).float().mean().item()
                         for c, name in enumerate(names)}
            results["class_coverage"]["conditional_accuracy"] = per_class
            results["class_coverage"]["conditional_accuracy_mean"] = \
                sum(per_class.values()) / len(per_class)
    if "intra_fid" in metrics:
        if images.labels is None:
            raise GansError("--metrics intra_fid needs labelled reference images; "
                            "drop intra_fid from --metrics")
        # The labels of the real features, selected as real_features selects the images.
        labels = subset(Images(torch.as_tensor(images.labels), None, ""), num_real)
        results["intra_fid"] = _intra_fid(real, labels, fake, fake_labels, names, protocol)
    return results


def _evaluate_paired(checkpoint: Path, generator, recipe, weights_kind: str,
                     options: EvalOptions, device) -> dict:
    """An image-to-image model: outputs from the reference split's inputs, compared with that
    split's images (FID, KID, precision/recall, density/coverage), with each output's own
    target (L1), and with its input's class (the dataset classifier's accuracy)."""
    from gans.sampling.generate import translate

    metrics = set(options.metrics or PAIRED_DEFAULT)
    wrong = sorted(metrics - set(PAIRED_METRICS))
    if wrong:
        raise GansError(f"--metrics {wrong[0]} does not apply to an image-to-image checkpoint; "
                        f"choose from {','.join(PAIRED_METRICS)}")
    if options.reference not in (None, "train", "test"):
        raise GansError("--reference: an image-to-image model is evaluated on its dataset's own "
                        "pairs; use --reference train or test")
    data = recipe.data
    classifier_module = CLASSIFIERS.get(data.source or data.name)
    if "class_accuracy" in metrics and classifier_module is None:
        if options.metrics is not None:
            raise GansError(f"--metrics class_accuracy needs a classifier for the dataset; gans "
                            f"ships one for {', '.join(CLASSIFIERS)}; drop class_accuracy")
        metrics.discard("class_accuracy")
    images, section, split = _reference_images(data, options.reference)
    num_fake = min(options.num_fake, len(images.pixels))
    num_real = min(options.num_real or len(images.pixels), len(images.pixels))
    inputs, targets = images.conditions[:num_fake], images.pixels[:num_fake]
    reference = {"dataset": images.description, "split": split, "resolution": data.resolution}
    generated_by = {"generator": f"{checkpoint} ({weights_kind} weights)", "seed": options.seed,
                    "inputs": f"the first {num_fake} inputs of the {split} split"}
    outputs = torch.cat([to_uint8_rgb(translate(generator, chunk.to(device), options.seed))
                         .cpu() for chunk in tqdm(inputs.split(options.batch_size),
                                                  desc=f"{num_fake} translated images",
                                                  unit="batch", leave=False)])
    results: dict = {}
    if metrics & {"fid", "kid", "pr", "dc"}:
        weights = resolve_inception_weights(recipe.metrics.inception_weights)
        extractor = inception(weights, options.precision, options.compile, device)
        key = real_key(section, split, images, weights, num_real, options.precision)
        real, _ = real_features(images, key, extractor, options.batch_size, options.use_cache)
        fake = torch.cat([features_of(extractor, chunk.to(device), options.batch_size).cpu()
                          for chunk in tqdm(outputs.split(options.batch_size),
                                            desc=f"Inception features of {num_fake} outputs",
                                            unit="batch", leave=False)])
        protocol = {"extractor": EXTRACTOR_NAME, "weights_sha256": weights.sha256,
                    "num_fake": num_fake, "num_real": num_real, "reference": reference,
                    "resize": RESIZE, "precision": options.precision, **generated_by}
        results.update(feature_metrics(metrics, real, fake, protocol, options.seed))
    plain = {"num_fake": num_fake, "num_real": num_fake, "reference": reference, **generated_by}
    if "l1" in metrics:
        truth = to_uint8_rgb(targets)
        error = (outputs.float() - truth.float()).abs().mean() / 255.0
        results["l1"] = {"value": error.item(), "extractor": "pixels in [0, 1], mean over "
                         "pixels and channels", "weights_sha256": "-", "resize": "none",
                         **plain}
    if "class_accuracy" in metrics:
        if images.labels is None:
            raise GansError("--metrics class_accuracy needs labelled reference images; drop it")
        lib = importlib.import_module(classifier_module)
        classifier = lib.load_classifier(device=device)
        labels = torch.as_tensor(images.labels[:num_fake])
        with torch.no_grad():
            def accuracy(pixels):
                predicted = torch.cat([classifier(c.to(device)).argmax(1).cpu()
                                       for c in pixels.split(options.batch_size)])
                return (predicted == labels).float().mean().item()

            results["class_accuracy"] = {
                "value": accuracy(outputs),
                "on_targets": accuracy(to_uint8_rgb(targets)),
                "extractor": f"{classifier_module} classifier",
                "weights_sha256": lib.weights_sha256(),
                "resize": "to 28x28 inside the classifier", **plain}
    return results


def feature_metrics(metrics: set, real: torch.Tensor, fake: torch.Tensor, protocol: dict,
                    seed: int) -> dict:
    """FID, KID, precision/recall and density/coverage of Inception features, as asked."""
    results: dict = {}
    if "fid" in metrics:
        fid = feature_fid()
        fid.update(real, real=True)
        fid.update(fake, real=False)
        results["fid"] = {"value": fid.compute().item(), **protocol}
    if "kid" in metrics:
        results["kid"] = {**_kid(real, fake, seed), **protocol}
    if "pr" in metrics:
        for name, value in manifold.precision_recall(real, fake, k=3).items():
            results[name] = {"value": value, "k": 3, **protocol}
    if "dc" in metrics:
        for name, value in manifold.density_coverage(real, fake, k=5).items():
            results[name] = {"value": value, "k": 5, **protocol}
    return results


def _intra_fid(real, real_labels, fake, fake_labels, names, protocol: dict) -> dict:
    """FID per class (real and generated images of that class) and the mean over classes."""
    per_class, counts = {}, {}
    for c, name in enumerate(names):
        real_c, fake_c = real[real_labels == c], fake[fake_labels == c]
        if len(real_c) < 2 or len(fake_c) < 2:
            raise GansError(f"intra_fid: class {name!r} has {len(real_c)} real and "
                            f"{len(fake_c)} generated images, and FID needs 2 of each; raise "
                            f"--num-fake (to at least {2 * len(names)}) or --num-real")
        fid = feature_fid()
        fid.update(real_c, real=True)
        fid.update(fake_c, real=False)
        per_class[name] = fid.compute().item()
        counts[name] = {"num_real": len(real_c), "num_fake": len(fake_c)}
    return {"value": sum(per_class.values()) / len(per_class), "per_class": per_class,
            "per_class_images": counts, **protocol,
            "labels": "generated: every class in turn; real: the dataset's labels"}


@torch.no_grad()
def _generated(generator, extractor, classifier, options: EvalOptions, device, labels=None):
    """Inception features and classifier labels of the generated images, batch by batch;
    `labels`: the classes of a conditional model's images."""
    z = latents(options.num_fake, generator.latent_dim, options.seed)
    features, predicted = [], []
    label_chunks = labels.split(options.batch_size) if labels is not None else \
        [None] * len(z.split(options.batch_size))
    for chunk, y in tqdm(list(zip(z.split(options.batch_size), label_chunks)),
                         desc=f"{options.num_fake} generated images", unit="batch", leave=False):
        # Quantized as a saved PNG would be; the classifier sees the same pixels as Inception.
        pixels = to_uint8_rgb(generator(chunk.to(device), None if y is None else y.to(device)))
        if extractor is not None:
            features.append(features_of(extractor, pixels, options.batch_size).cpu())
        if classifier is not None:
            predicted.append(classifier(pixels).argmax(1).cpu())  # grey stays grey: mean of RGB
    return (torch.cat(features) if features else None,
            torch.cat(predicted) if predicted else None)


def _kid(real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict:
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(KID_SUBSET_SIZE, len(real), len(fake))
    with warnings.catch_warnings():  # its memory warning is about images; it holds features here
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=FeaturesAsInput(), subsets=KID_SUBSETS,
                                      subset_size=size)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    with torch.random.fork_rng():  # the subsets are drawn from torch's global generator
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return {"value": mean.item(), "std": std.item(), "subsets": KID_SUBSETS, "subset_size": size}


def format_table(results: dict) -> str:
    rows = []
    for name, figure in results.items():
        value = figure["value"]
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        if "std" in figure:
            shown += f" ± {figure['std']:.4f}"
        if name == "class_accuracy":
            shown += f" (the classifier on the targets: {figure['on_targets']:.4f})"
        if name == "class_coverage":
            shown += (f" of {figure['num_classes']} classes covered, "
                      f"KL(real || generated) {figure['kl_real_generated']:.4f}")
        rows.append((name, shown))
    width = max(len(n) for n, _ in rows)
    first = next(iter(results.values()))
    ref = first["reference"]
    lines = [f"{n:<{width}}  {v}" for n, v in rows]
    lines.append(f"protocol: {first['extractor']} (sha256 {first['weights_sha256'][:12]}), "
                 f"{first['num_fake']} generated vs {first['num_real']} real, "
                 f"{ref['dataset']} [{ref['split']}] at {ref['resolution']}px, "
                 f"resize {first['resize']}"
                 + (f", Inception {first['precision']}" if "precision" in first else ""))
    return "\n".join(lines)


def write_json(results: dict, path: Path) -> None:
    text = json.dumps(results, indent=2, default=str) + "\n"
    atomic_write(Path(path), lambda f: f.write(text.encode()))
