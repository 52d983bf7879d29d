"""Three quick doodles, drawn with PIL lines as a user would with a mouse, and what a pix2pix
checkpoint makes of them (docs/pix2pix.md shows the figure).

    python benchmarks/pix2pix_sketches.py CHECKPOINT --out docs/figures/pix2pix-sketches.png

Writes the drawings (odd sizes, black lines on white, 5 px strokes) beside the figure, then a
figure of three rows: the drawing as drawn, the model's input (normalised to its resolution),
and its output for seeds 0 and 1 (dropout is the noise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def doodles() -> dict:
    """name -> PIL image: a T-shirt, a sneaker and a pair of trousers, drawn freehand-style."""
    from PIL import Image, ImageDraw

    def canvas(size):
        image = Image.new("RGB", size, "white")
        return image, ImageDraw.Draw(image)

    shirt, draw = canvas((301, 277))
    draw.line([(110, 40), (60, 60), (20, 120), (60, 140), (80, 115), (82, 250), (220, 250),
               (222, 115), (242, 140), (282, 120), (242, 60), (192, 40), (110, 40)], fill="black",
              width=5, joint="curve")
    draw.arc([(115, 20), (187, 70)], 0, 180, fill="black", width=5)

    shoe, draw = canvas((355, 203))
    draw.line([(30, 90), (40, 160), (320, 165), (330, 135), (250, 110), (180, 70), (130, 60),
               (110, 80), (60, 85), (30, 90)], fill="black", width=5, joint="curve")
    draw.line([(40, 140), (325, 145)], fill="black", width=5)

    trousers, draw = canvas((197, 331))
    draw.line([(50, 20), (150, 20), (170, 310), (120, 310), (100, 110), (80, 310), (30, 310),
               (50, 20)], fill="black", width=5, joint="curve")
    return {"shirt": shirt, "sneaker": shoe, "trousers": trousers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    args = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.utils import save_image

    import gans
    from gans.data import as_unit

    model = gans.load(args.checkpoint)
    folder = args.out.parent / f"{args.out.stem}-drawings"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, image in doodles().items():
        path = folder / f"{name}.png"
        image.save(path)
        size = model.resolution * 4
        shown = Image.new("RGB", (max(image.size),) * 2, "white")
        shown.paste(image, ((shown.width - image.width) // 2, (shown.height - image.height) // 2))
        gray = np.array(shown.convert("L").resize((size, size)))
        drawn = torch.from_numpy(gray).float()[None] / 255
        inputs = model.sketch_input(path)
        outputs = [as_unit(model.translate(inputs, seed)) for seed in (0, 1)]
        up = [torch.nn.functional.interpolate(t.float(), size=size, mode="nearest")[0]
              for t in [inputs.float() / 255, *outputs]]
        rows += [drawn.expand(up[0].size(0), -1, -1), *up]
    save_image(torch.stack(rows), args.out, nrow=4, padding=4, pad_value=0.5)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
