"""How well `gans project` finds images: self-consistency, real images, distances, time.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/projection.py CKPT --space z
        [--parts self,real,distances,time,pictures] [--num 100] [--steps 300]
        [--distance pixel+ssim] [--lr LR] [--compare pixel,ssim,...] [--pictures DIR]

Parts (each prints its figures, one line per figure, with the settings):
- self: project `--num` images the generator made from known latents (drawn from seed
  1000; a conditional model's cycle through the classes): PSNR of the reconstruction and
  distance of the recovered latent (z: RMS per component, where two random z are
  sqrt(2) = 1.41 apart; w: |w - w_true| over the spread of w, where two random w are about
  1.41 apart; a w+ latent is averaged over its layers first).
- real: project the first `--num` Fashion-MNIST test images: PSNR against the best of 10,000
  random samples of the same model (closest in pixels to each image), and whether the shipped
  classifier gives the projection the target's class (and the true label's).
- distances: the same real images projected with each distance in `--compare`, judged by
  PSNR, SSIM and class kept (the distance used cannot judge itself alone).
- time: seconds per projection of one image (what `gans project IMAGE` costs), default steps.
- pictures: a row of target, projection and 6 variations for each of 8 test images, into
  --pictures (docs/images/projection-CHECKPOINT-SPACE.png).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

import gans
from gans.data import as_signed, as_unit, load_images
from gans.sampling import project as P
from gans.sampling.generate import latents


def targets_of(G, num: int) -> tuple:
    """The first `num` Fashion-MNIST test images at the model's size, in [-1, 1], and labels."""
    data = G.recipe.data
    test = load_images(type(data)(**{**data.__dict__, "split": "test", "limit": None}))
    return as_signed(test.pixels[:num]), test.labels[:num]


def options(args, **changes) -> P.ProjectOptions:
    return P.ProjectOptions(**{"space": args.space, "steps": args.steps, "seed": 0,
                               "distance": args.distance, "lr": args.lr, **changes})


def distance_for(G, spec: str):
    return P.make_distance(spec, P.DistanceContext(G.path))


def ssim(images, targets) -> torch.Tensor:
    return 1 - P.ssim_distance(images.clamp(-1, 1), targets)


def self_consistency(G, args) -> None:
    g = G.network
    z = latents(args.num, g.latent_dim, 1000)
    classes = len(G.classes)
    labels = torch.arange(args.num) % classes if classes else None
    with torch.no_grad():
        if args.space == "z":
            truth = z
            made = G(z, labels)
        else:
            truth = g.mapping(z, labels=labels)
            made = P.render(g, "w", truth)
    made = made.clamp(-1, 1)
    started = time.perf_counter()
    found = P.project(g, made, options(args), find_class=bool(classes) and args.space == "z",
                      distance=distance_for(G, args.distance))
    seconds = time.perf_counter() - started
    quality = torch.tensor([f.psnr for f in found])
    if args.space == "z":
        latent = torch.cat([f.latent for f in found])
        gap = ((latent - truth).square().mean(1).sqrt())
        unit = "RMS per z component (random pairs: 1.41)"
    else:
        spread = P.w_statistics(g)[1]
        latent = torch.cat([f.latent if f.latent.dim() == 2 else f.latent.mean(1)
                            for f in found])
        gap = (latent - truth).norm(dim=1) / spread
        unit = "|w - w_true| / spread of w (random pairs: about 1.41)"
    kept = ""
    if classes and args.space == "z":
        kept = f"; class found {sum(int(f.label == int(y)) for f, y in zip(found, labels))}" \
               f"/{args.num}"
    print(f"self {args.space} {args.num} images {args.steps} steps {args.distance}: PSNR "
          f"mean {quality.mean():.2f} dB, min {quality.min():.2f}, >= 30 dB: "
          f"{int((quality >= 30).sum())}/{args.num}; latent distance mean {gap.mean():.3f} "
          f"median {gap.median():.3f} ({unit}){kept}; {seconds / args.num:.2f} s/image "
          f"in a batch of {args.num}")


def best_of_random(G, targets, count: int = 10000) -> torch.Tensor:
    """Per target, the PSNR of the closest (in pixels) of `count` random samples."""
    classes = len(G.classes)
    best = torch.full((len(targets),), -math.inf)
    flat = targets.flatten(1)
    for start in range(0, count, 500):
        labels = (torch.arange(start, start + 500) % classes) if classes else None
        with torch.no_grad():
            images = G.network(latents(500, G.latent_dim, 7 + start),
                               labels).clamp(-1, 1).flatten(1)
        mse = torch.cdist(flat, images).square() / flat.size(1)  # (targets, 500)
        best = torch.maximum(best, (10 * torch.log10(4 / mse)).max(1).values)
    return best


def classify(images) -> torch.Tensor:
    from gans.evaluation.classifiers.fashion_mnist import load_classifier

    with torch.no_grad():
        return load_classifier()(images.clamp(-1, 1)).argmax(1)


def judge(found, targets, labels) -> dict:
    images = torch.cat([f.image for f in found])
    quality = P.psnr(images, targets)
    own, theirs = classify(images), classify(targets)
    return {"psnr": quality, "ssim": ssim(images, targets),
            "kept": int((own == theirs).sum()), "true": int((own == labels).sum()),
            "target_true": int((theirs == labels).sum())}


def real_images(G, args) -> None:
    targets, labels = targets_of(G, args.num)
    class_name = "best" if G.classes and args.space == "z" else None
    started = time.perf_counter()
    found = P.project(G.network, targets, options(args), find_class=class_name is not None,
                      distance=distance_for(G, args.distance))
    seconds = time.perf_counter() - started
    figures = judge(found, targets, labels)
    random = best_of_random(G, targets)
    quality = figures["psnr"]
    print(f"real {args.space} {args.num} test images {args.steps} steps {args.distance}: PSNR "
          f"mean {quality.mean():.2f} dB (best of 10,000 random samples: {random.mean():.2f}); "
          f"projection closer than the best random sample for {int((quality > random).sum())}"
          f"/{args.num}; SSIM mean {figures['ssim'].mean():.3f}; classifier: projection's "
          f"class = target's {figures['kept']}/{args.num}, = true label {figures['true']}/"
          f"{args.num} (targets themselves: {figures['target_true']}/{args.num}); "
          f"{seconds / args.num:.2f} s/image in a batch of {args.num}")


def compare_distances(G, args) -> None:
    targets, labels = targets_of(G, args.num)
    for spec in args.compare.split(","):
        started = time.perf_counter()
        found = P.project(G.network, targets, options(args, distance=spec),
                          find_class=bool(G.classes) and args.space == "z",
                          distance=distance_for(G, spec))
        seconds = time.perf_counter() - started
        figures = judge(found, targets, labels)
        print(f"distance {spec:>16} ({args.space}, {args.num} test images, {args.steps} steps): "
              f"PSNR {figures['psnr'].mean():.2f} dB, SSIM {figures['ssim'].mean():.3f}, "
              f"class kept {figures['kept']}/{args.num}; {seconds / args.num:.2f} s/image "
              f"in a batch of {args.num}")


def timing(G, args) -> None:
    targets, _ = targets_of(G, 3)
    class_name = "best" if G.classes and args.space == "z" else None
    seconds = []
    for i in range(3):
        started = time.perf_counter()
        G.project(targets[i:i + 1], space=args.space, steps=args.steps, class_name=class_name,
                  distance=args.distance)
        seconds.append(time.perf_counter() - started)
    print(f"time {args.space} {args.steps} steps {args.distance}: one image "
          f"{sorted(seconds)[1]:.2f} s (median of 3; {torch.get_num_threads()} thread(s))")


def pictures(G, args) -> None:
    from gans.sampling.provenance import make_info, save_image

    targets, _ = targets_of(G, 8)
    found = G.project(targets, space=args.space, steps=args.steps, distance=args.distance,
                      class_name="best" if G.classes and args.space == "z" else None)
    rows = []
    for f in found:
        rows += [f.target, G.vary(f, n=6, spread=args.spread, seed=1).clamp(-1, 1)]
    out = Path(args.pictures)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"projection-{Path(G.path).stem}-{args.space.replace('+', 'plus')}.png"
    save_image(as_unit(torch.cat(rows)), path,
               make_info("projection-benchmark", checkpoint=G.path, space=args.space,
                         steps=args.steps, spread=args.spread, distance=args.distance), nrow=8)
    print(f"pictures: {path} (each row: target, projection, 6 variations at spread {args.spread})")


PARTS = {"self": self_consistency, "real": real_images, "distances": compare_distances,
         "time": timing, "pictures": pictures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--space", default="z", choices=P.SPACES)
    parser.add_argument("--parts", default="self,real,time")
    parser.add_argument("--num", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--distance", default=P.DEFAULT_DISTANCE)
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default: the projector's for the space)")
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--compare", default="pixel,ssim,pixel+ssim,classifier,discriminator,"
                                             "inception")
    parser.add_argument("--pictures", default="docs/images")
    args = parser.parse_args()
    torch.set_num_threads(1)
    G = gans.load(args.checkpoint)
    print(f"# {args.checkpoint}: {type(G.network).__name__}, {G.resolution}px, "
          f"{len(G.classes)} classes, {G.weights} weights")
    for part in args.parts.split(","):
        PARTS[part](G, args)


if __name__ == "__main__":
    main()
