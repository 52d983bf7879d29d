"""docs/api.md is a notebook: its Python cells run here, in order, in one namespace, so the
page cannot drift from the code; the README's Python example runs after them."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "api.md"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def python_cells(text: str) -> list:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_has_cells():
    cells = python_cells(DOC.read_text())
    assert len(cells) >= 5
    assert any("CSVLogger" in c for c in cells) and any("gans.load(" in c for c in cells)


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="the page trains on Fashion-MNIST, "
                    "installed by the Debian package dataset-fashion-mnist")
def test_every_cell_of_the_api_page_runs(tmp_path, monkeypatch):
    (tmp_path / "recipes").symlink_to(REPO / "recipes")  # the page runs from the repo root
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__api_doc__"}
    for number, cell in enumerate(python_cells(DOC.read_text()), 1):
        try:
            exec(compile(cell, f"docs/api.md cell {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/api.md cell {number} failed: {exc!r}\n{cell}") from exc
    # What the cells promise, checked where they only print it.
    assert namespace["images"].shape == (16, 1, 32, 32)
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "G.safetensors").is_file()
    assert namespace["module"].g_step == 5
    assert os.path.isfile(Path(namespace["trainer"].logger.log_dir) / "metrics.csv")
    assert set(namespace["runs"]) == {1e-4, 2e-4}
    # The README's example loads the page's first run, which is where it says.
    (readme,) = python_cells((REPO / "README.md").read_text())
    exec(compile(readme, "README.md", "exec"), namespace)
    assert namespace["G"].path == Path("runs/quickstart/version_0/checkpoints/last.ckpt")
