"""The `gans` command: argument handling only, over the functions of gans/api.py (the same
ones `import gans` offers)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Optional

from gans.errors import GansError

EXIT_USAGE = 2
TRUST_HELP = ("load a checkpoint that holds more than tensors (a full unpickle, which can run "
              "code from the file), or whose recipe names code outside gans (imported, so it "
              "runs); only for files from a source you trust")


def _train(args) -> int:
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from gans import api

    try:
        run = api.train(args.recipe, Path(args.out), overrides=args.set, resume=args.resume,
                        trust=args.trust_checkpoint)
    except SIGTERMException:  # the checkpoint is saved and the message printed by then
        return 128 + signal.SIGTERM
    except SystemExit as stop:  # how Lightning ends a run after Ctrl-C, once it has saved
        return 128 + signal.SIGINT if stop.code == 1 else stop.code
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank == 0:  # every process of a multi-device run returns here
        print(run.run_dir)
    return 0


def _recipe(args) -> int:
    from gans import api
    from gans.recipe import Recipe

    if args.list:
        for title, names in api.registered().items():
            print(f"{title}: {', '.join(names)}")
        return 0
    if not args.recipe:
        raise GansError("gans recipe needs a recipe file (gans recipe RECIPE.yaml) or --list")
    print(Recipe.load(args.recipe, args.set).to_yaml(), end="")
    return 0


def _sample(args) -> int:
    from gans import api
    from gans.sampling.generate import parse_seeds

    # Which flags go together is the command line's business; the values are checked by the
    # functions that use them.
    if args.num < 1:
        raise GansError(f"--num must be at least 1, got {args.num}")
    if args.nrow is not None and args.nrow < 1:
        raise GansError(f"--nrow must be at least 1, got {args.nrow}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.latent is not None:
        return _sample_latent(args, seeds)
    for flag, value in (("--variations", args.variations), ("--toward", args.toward),
                        ("--spread", args.spread)):
        if value is not None:
            raise GansError(f"{flag} goes with --latent FILE (a latent written by gans project)")
    if args.style_mix and args.interpolate:
        raise GansError("--style-mix and --interpolate are two kinds of output; pick one")
    if (args.style_mix or args.interpolate) and seeds is None:
        flag = "--style-mix" if args.style_mix else "--interpolate"
        raise GansError(f"{flag} needs --seeds, e.g. {flag} --seeds 1,2,3,4")
    if seeds is not None and not (args.style_mix or args.interpolate):
        raise GansError("--seeds goes with --style-mix or --interpolate; for other samples use "
                        "--seed and --num")
    if args.class_ is not None and args.per_class is not None:
        raise GansError("--class and --per-class are two kinds of grid; pick one")
    if args.per_class is not None and args.per_class < 1:
        raise GansError(f"--per-class must be at least 1, got {args.per_class}")
    if args.per_class is not None and (args.style_mix or args.interpolate):
        raise GansError("--per-class goes with plain samples; for --style-mix or --interpolate "
                        "of a class-conditional model pick one with --class")
    if args.style_mix and args.truncate_z is not None:
        raise GansError("--truncate-z goes with plain samples and --interpolate; for --style-mix "
                        "use --truncation")
    if args.interpolate and (args.frames < 2 or args.fps <= 0):
        raise GansError(f"--frames must be at least 2 and --fps above 0, "
                        f"got --frames {args.frames} --fps {args.fps}")
    if args.sketch is None and args.out is None:
        raise GansError("gans sample needs --out FILE.png (a grid) or --out DIR/ (one PNG per "
                        "image)")
    generator = api.load(Path(args.checkpoint), use_ema=not args.no_ema,
                         trust=args.trust_checkpoint)
    if args.sketch is not None:
        written = generator.save_translations(args.sketch, args.out, args.seed)
        print(written[0] if len(written) == 1 else f"{len(written)} images in {written[0].parent}")
        return 0
    if generator.weights == "raw" and not args.no_ema and not generator.translates:
        print("note: this file holds no EMA generator (train.ema was 0, or it was exported "
              "with --no-ema); sampling the trained generator", file=sys.stderr)
    if args.interpolate:
        print(generator.save_interpolation(args.out, seeds, args.frames, args.fps,
                                           truncation=args.truncation,
                                           truncate_z=args.truncate_z, class_name=args.class_))
        return 0
    if args.style_mix:
        print(generator.save_style_mix(args.out, seeds, truncation=args.truncation,
                                       class_name=args.class_))
        return 0
    written = generator.save(args.out, args.num, args.seed, nrow=args.nrow,
                             class_name=args.class_, per_class=args.per_class,
                             truncation=args.truncation, truncate_z=args.truncate_z)
    print(written[-1] if len(written) == 1 or not str(args.out).endswith("/")
          else f"{len(written)} images in {written[-1].parent}")
    return 0


def _sample_latent(args, seeds) -> int:
    from gans import api

    if args.interpolate or args.per_class is not None or args.truncation is not None \
            or args.truncate_z is not None:
        raise GansError("--latent goes with --variations, --toward or --style-mix --seeds; "
                        "drop --interpolate, --per-class, --truncation and --truncate-z")
    if args.style_mix and seeds is None:
        raise GansError("--style-mix with --latent needs --seeds for the fine styles, e.g. "
                        "--seeds 1,2,3")
    if seeds is not None and not args.style_mix:
        raise GansError("--seeds goes with --style-mix")
    if args.variations is not None and args.variations < 1:
        raise GansError(f"--variations must be at least 1, got {args.variations}")
    if args.spread is not None and args.variations is None:
        raise GansError("--spread goes with --variations N")
    if args.class_ is not None and not args.style_mix:
        raise GansError("--class goes with --latent only for --style-mix (the seeds' class); "
                        "the latent has its own class, and --toward moves it to another")
    generator = api.load(Path(args.checkpoint), use_ema=not args.no_ema,
                         trust=args.trust_checkpoint)
    print(generator.save_latent_images(
        args.out, Path(args.latent), variations=args.variations or 0,
        spread=0.5 if args.spread is None else args.spread, seed=args.seed, toward=args.toward,
        style_mix=seeds if args.style_mix else None, class_name=args.class_))
    return 0


def _project(args) -> int:
    from gans import api

    generator = api.load(Path(args.checkpoint), use_ema=not args.no_ema,
                         trust=args.trust_checkpoint)
    for result in generator.save_projections(
            [Path(p) for p in args.images], Path(args.out), space=args.space, steps=args.steps,
            seed=args.seed, class_name=args.class_, distance=args.distance):
        found = f", class {result['class']}" if result["class"] else ""
        print(f"{result['projection']} (PSNR {result['psnr_db']:.2f} dB{found}; latent "
              f"{result['latent']})")
    return 0


def _inspect(args) -> int:
    from gans import api
    from gans.sampling.provenance import format_info

    info = api.inspect(Path(args.image))
    if not info:
        print(f"{args.image}: no gans provenance (not written by gans, or its text chunks "
              "were stripped)")
        return 1
    print(format_info(info))
    return 0


def _card(args) -> int:
    from gans import api

    print(api.card(Path(args.checkpoint), trust=args.trust_checkpoint), end="")
    return 0


def _export(args) -> int:
    from gans import api

    weights = api.export(Path(args.checkpoint), Path(args.out), use_ema=not args.no_ema,
                         trust=args.trust_checkpoint)
    print(f"{args.out} ({weights} generator)")
    return 0


def _eval(args) -> int:
    from gans import api
    from gans.evaluation.evaluate import format_table

    results = api.evaluate(
        Path(args.checkpoint), metrics=args.metrics or None, num_fake=args.num_fake,
        reference=args.reference, num_real=args.num_real, batch_size=args.batch_size,
        seed=args.seed, use_cache=not args.no_cache, use_ema=not args.no_ema,
        device=args.device, precision=args.precision, compile=args.compile,
        trust=args.trust_checkpoint, json_path=args.json)
    print(format_table(results))
    return 0


def _bench(args) -> int:
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from gans import api

    try:
        api.benchmark(Path(args.suite), Path(args.out), only=args.only, dry_run=args.dry_run,
                      watts=args.watts)
        return 0
    except SIGTERMException:  # the run's last.ckpt is saved: the next `gans bench` resumes it
        return 128 + signal.SIGTERM
    except SystemExit as stop:  # Lightning's way out after Ctrl-C, once it has saved
        return 128 + signal.SIGINT if stop.code == 1 else stop.code


def _serve(args) -> int:
    from gans.serve import serve

    if not 0 <= args.port <= 65535:
        raise GansError(f"--port must be from 0 to 65535 (0 = any free port), got {args.port}")
    return serve(args.paths or ["runs"], host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gans", description="Recipe-driven GAN training.")
    from gans import __version__
    from gans.recipe import INCEPTION_BATCH_SIZE

    parser.add_argument("--version", action="version", version=f"gans {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train from a recipe; prints the run directory")
    p.add_argument("recipe", nargs="?", help="recipe YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override one recipe key (value parsed as YAML); repeatable")
    p.add_argument("--out", default="runs", help="folder for runs (default: runs)")
    p.add_argument("--resume", metavar="RUN_DIR_OR_CKPT",
                   help="continue a run in its own directory (e.g. after Ctrl-C or a crash); "
                        "--set train.steps=N trains it longer")
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    p.set_defaults(run=_train)

    p = commands.add_parser("recipe", help="print the resolved recipe, or --list the names")
    p.add_argument("recipe", nargs="?", help="recipe YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE")
    p.add_argument("--list", action="store_true",
                   help="list registered generators, discriminators, objectives, datasets and augmentations")
    p.set_defaults(run=_recipe)

    p = commands.add_parser("sample", help="write images from a checkpoint")
    p.add_argument("checkpoint", help="a .ckpt written by gans train, or a .safetensors "
                                      "written by gans export")
    p.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", default=None,
                   help="FILE.png for a grid, or DIR/ for one PNG per image (with --sketch: "
                        "default beside the drawing, NAME-output.png)")
    p.add_argument("--sketch", default=None, metavar="DRAWING",
                   help="image-to-image checkpoints (recipes/pix2pix/): the image of this "
                        "drawing (black lines on white, any size), or of each drawing in a "
                        "folder")
    p.add_argument("--seed", type=int, default=0, help="same seed, same images (default 0)")
    p.add_argument("--nrow", type=int, default=None, help="images per grid row")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="pull styles toward the average by PSI in [0, 1] (stylegan-lite; "
                        "0.7 trades variety for quality; 1 = none)")
    p.add_argument("--style-mix", action="store_true",
                   help="write the style-mixing grid of --seeds (coarse styles from each row's "
                        "seed, fine styles from each column's)")
    p.add_argument("--seeds", default=None,
                   help="seeds for --style-mix or --interpolate, e.g. 1,2,3,4 or 0-5")
    p.add_argument("--interpolate", action="store_true",
                   help="a looping walk through --seeds: --out walk.gif, walk.mp4 (needs "
                        "PyAV) or walk.png (one row per pair of seeds)")
    p.add_argument("--frames", type=int, default=24,
                   help="frames from one seed to the next (--interpolate; default 24)")
    p.add_argument("--fps", type=float, default=12.0,
                   help="frames per second of the .gif or .mp4 (default 12)")
    p.add_argument("--truncate-z", type=float, default=None, metavar="T",
                   help="redraw every z component with |z| > T (BigGAN's truncation trick, "
                        "any model; 1 to 2 trades variety for quality)")
    p.add_argument("--class", dest="class_", default=None, metavar="NAME",
                   help="class-conditional checkpoints: every image of this class, by name "
                        "(e.g. sneaker, ankle-boot) or index (default: every class in turn)")
    p.add_argument("--per-class", type=int, default=None, metavar="K",
                   help="class-conditional checkpoints: a grid with one row of K images per "
                        "class (replaces --num and --nrow)")
    p.add_argument("--latent", default=None, metavar="FILE",
                   help="draw from a latent written by gans project (NAME-latent.npz): its "
                        "image, or with --variations, --toward or --style-mix around it")
    p.add_argument("--variations", type=int, default=None, metavar="N",
                   help="with --latent: its image and N images of latents around it")
    p.add_argument("--spread", type=float, default=None, metavar="S",
                   help="with --variations: how far around, in typical steps of the latent "
                        "space (default 0.5)")
    p.add_argument("--toward", default=None, metavar="CLASS",
                   help="with --latent, class-conditional checkpoints: move it toward CLASS")
    p.add_argument("--no-ema", action="store_true",
                   help="sample the trained generator instead of its EMA copy")
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    p.set_defaults(run=_sample)

    p = commands.add_parser("project", help="find the latents whose images are closest to "
                                            "your pictures (docs/projection.md)")
    p.add_argument("checkpoint", help="a .ckpt written by gans train, or a .safetensors "
                                      "written by gans export")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files; each is centre-cropped and resized to the model's size")
    p.add_argument("--out", required=True, help="folder for NAME-target.png, "
                   "NAME-projection.png, NAME-latent.npz, NAME-progress.png, "
                   "NAME-distances.json")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--space", default="z", choices=("z", "w", "w+"),
                   help="z (any model, default), w or w+ (style models such as stylegan-lite)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same projection (default 0)")
    p.add_argument("--class", dest="class_", default=None, metavar="NAME",
                   help="class-conditional checkpoints: the class to project into, or best "
                        "(try every class, keep the closest)")
    p.add_argument("--distance", default=None,
                   help="what closest means: pixel, ssim, classifier, discriminator, "
                        "inception, joined with + (default pixel+ssim; docs/projection.md)")
    p.add_argument("--no-ema", action="store_true", help="project into the trained generator")
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    p.set_defaults(run=_project)

    p = commands.add_parser("inspect", help="print the provenance a gans PNG carries "
                                            "(exit 1 if it has none)")
    p.add_argument("image", help="a PNG written by gans (sample, style-mix, training samples)")
    p.set_defaults(run=_inspect)

    p = commands.add_parser("card", help="print a Markdown model card of a checkpoint")
    p.add_argument("checkpoint", help="a .ckpt written by gans train")
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    p.set_defaults(run=_card)

    p = commands.add_parser("export", help="write the generator as safetensors, for "
                                           "gans sample and other tools")
    p.add_argument("checkpoint", help="a .ckpt written by gans train")
    p.add_argument("--out", required=True, help="FILE.safetensors")
    p.add_argument("--no-ema", action="store_true",
                   help="export the trained generator instead of its EMA copy")
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    p.set_defaults(run=_export)

    p = commands.add_parser("eval", help="FID, KID, precision/recall, density/coverage and "
                                         "class coverage of a checkpoint, with their protocol")
    p.add_argument("checkpoint", help="a .ckpt written by gans train")
    p.add_argument("--metrics", default=None,
                   help="comma-separated: fid,kid,pr,dc,coverage,intra_fid (default: all that "
                        "apply; intra_fid for class-conditional checkpoints); image-to-image "
                        "(pix2pix) checkpoints: fid,kid,pr,dc,l1,class_accuracy (default "
                        "fid,kid,l1,class_accuracy, on the test split's inputs)")
    p.add_argument("--num-fake", type=int, default=10000, help="generated images (default 10000)")
    p.add_argument("--reference", default=None,
                   help="test, train, or a folder of real images (default: test where the "
                        "dataset has one)")
    p.add_argument("--num-real", type=int, default=None,
                   help="real images (default: the whole reference set)")
    p.add_argument("--batch-size", type=int, default=INCEPTION_BATCH_SIZE,
                   help=f"images per batch (default {INCEPTION_BATCH_SIZE}, the fastest measured "
                        "on a CPU; the figures do not depend on it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the real features instead of reading the cache")
    p.add_argument("--no-ema", action="store_true", help="evaluate the trained generator")
    p.add_argument("--trust-checkpoint", action="store_true", help=TRUST_HELP)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if "
                                                  "available)")
    p.add_argument("--precision", default="fp32", metavar="{fp32,bf16}",
                   help="Inception's arithmetic: fp32 (default, for reported figures) or bf16 "
                        "(about 2x faster on AVX512-BF16 CPUs; FID moves slightly, see "
                        "docs/performance.md)")
    p.add_argument("--compile", action="store_true",
                   help="compile Inception for inference first (tens of seconds once; faster "
                        "per image, see docs/performance.md)")
    p.set_defaults(run=_eval)

    p = commands.add_parser("bench", help="train recipe variants under one budget and several "
                                          "seeds; results tables and FID plots")
    p.add_argument("suite", help="suite YAML file, e.g. recipes/bench/smoke.yaml")
    p.add_argument("--out", default="runs",
                   help="folder for the runs and results (default: runs; they go in OUT/<suite>)")
    p.add_argument("--only", nargs="+", metavar="VARIANT",
                   help="run only these variants (the tables cover every finished run)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the suite and print the runs it would do; write nothing")
    p.add_argument("--watts", type=float, default=None,
                   help="average power of the device in W for the energy figure (default: an "
                        "estimate, see docs/benchmarks.md)")
    p.set_defaults(run=_bench)

    p = commands.add_parser("serve", help="a local web explorer for runs and checkpoints "
                                          "(docs/explorer.md); prints its URL")
    p.add_argument("paths", nargs="*", metavar="RUNS_DIR_OR_CKPT",
                   help="runs folders and checkpoint files to serve, nothing outside them "
                        "(default: runs)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free one)")
    p.set_defaults(run=_serve)
    return parser


def main(argv: Optional[list] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GansError as exc:
        print(f"gans {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"gans {args.command}: interrupted", file=sys.stderr)
        return 130
