import hashlib
import shutil

import pytest
import torch
from PIL import Image

from gans.cli import main
from gans.sampling.provenance import read_info, recipe_sha256
from gans.sampling.checkpoint import load_generator
from gans.sampling.generate import latents


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sample_grids_and_single_images_carry_their_provenance(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    _, recipe, _ = load_generator(ckpt)
    assert main(["sample", str(ckpt), "--num", "4", "--seed", "7", "--truncate-z", "1.5",
                 "--out", str(tmp_path / "grid.png")]) == 0
    info = read_info(tmp_path / "grid.png")
    assert info["kind"] == "grid" and info["seeds"] == "7" and info["truncate_z"] == "1.5"
    assert info["checkpoint_sha256"] == sha256(ckpt)
    assert info["recipe_sha256"] == recipe_sha256(recipe.to_dict())
    assert info["weights"] == "ema" and info["version"] and info["date"].endswith("+00:00")
    assert "truncation" not in info and "class" not in info  # only what was given

    assert main(["sample", str(ckpt), "--num", "3", "--seed", "2", "--out",
                 str(tmp_path / "single") + "/"]) == 0
    files = sorted((tmp_path / "single").glob("*.png"))
    assert [read_info(f)["index"] for f in files] == ["0", "1", "2"]
    assert {read_info(f)["kind"] for f in files} == {"single"}

    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "grid.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("gans:version: ") and lines[1] == "gans:kind: grid"
    assert f"gans:checkpoint_sha256: {sha256(ckpt)}" in lines


def test_the_pixels_are_those_torchvision_writes(trained_run, tmp_path):
    from torchvision.utils import save_image

    from gans.sampling.generate import generate

    ckpt = trained_run / "checkpoints" / "last.ckpt"
    assert main(["sample", str(ckpt), "--num", "6", "--nrow", "3", "--out",
                 str(tmp_path / "ours.png")]) == 0
    generator, _, _ = load_generator(ckpt)
    save_image((generate(generator, 6, 0) + 1) / 2, tmp_path / "theirs.png", nrow=3)
    ours, theirs = Image.open(tmp_path / "ours.png"), Image.open(tmp_path / "theirs.png")
    assert ours.tobytes() == theirs.tobytes()


def test_training_sample_grids_name_the_run_and_step(trained_run):
    info = read_info(trained_run / "samples" / "step_0000020.png")
    assert info["kind"] == "training-sample" and info["step"] == "20"
    assert info["run"] == str(trained_run.resolve()) and "checkpoint_sha256" not in info
    ckpt_recipe = load_generator(trained_run / "checkpoints" / "last.ckpt")[1]
    assert info["recipe_sha256"] == recipe_sha256(ckpt_recipe.to_dict())


def test_jpeg_grids_carry_it_as_a_comment(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    assert main(["sample", str(ckpt), "--num", "4", "--out", str(tmp_path / "g.jpg")]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "g.jpg")]) == 0
    assert "gans:kind: grid" in capsys.readouterr().out


def test_inspect_without_provenance_and_bad_files(tmp_path, capsys):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    assert main(["inspect", str(tmp_path / "plain.png")]) == 1
    out = capsys.readouterr().out
    assert "no gans provenance" in out and len(out.splitlines()) == 1
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (4, 4)).save(tmp_path / "x.bmp")
    for bad in ("missing.png", "notes.png", "x.bmp"):
        assert main(["inspect", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "pass a PNG written by gans" in err


def test_truncate_z_redraws_only_the_tails():
    z = latents(64, 32, seed=5)
    cut = latents(64, 32, seed=5, truncate_z=1.0)
    assert cut.abs().max() <= 1.0
    inside = z.abs() <= 1.0
    assert torch.equal(cut[inside], z[inside])
    assert torch.equal(cut, latents(64, 32, seed=5, truncate_z=1.0))


def test_truncate_z_bad_value_is_a_clear_error(trained_run, tmp_path, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    assert main(["sample", str(ckpt), "--truncate-z", "0", "--out", str(tmp_path / "a.png")]) == 2
    assert "--truncate-z must be above 0" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


HEADINGS = ["# Model card: tiny", "## Model", "## Data", "## Recipe",
            "## Training compute and time", "## Metrics", "## Intended use", "## Limitations",
            "## Risks"]


def test_card_has_every_section_and_the_right_numbers(trained_run, capsys):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    assert main(["card", str(ckpt)]) == 0
    card = capsys.readouterr().out
    for heading in HEADINGS:
        assert f"\n{heading}\n" in f"\n{card}"
    assert "- Steps: 20 generator updates of 8 images" in card
    assert "0.16 kimg" in card  # 20 steps x 8 images, one discriminator update each
    assert sha256(ckpt) in card
    assert "Wall-clock time: " in card and "unknown" not in card.split("## Metrics")[0]
    assert "48 images" in card  # the folder of the fixture
    assert "gans eval" in card  # no FID was tracked: it says how to measure one
    for word in ("fake imagery", "Biases of the data", "Energy used"):
        assert word in card


def test_card_of_a_checkpoint_without_its_run_directory(trained_run, tmp_path, capsys):
    alone = tmp_path / "alone.ckpt"
    shutil.copy(trained_run / "checkpoints" / "last.ckpt", alone)
    assert main(["card", str(alone)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "Wall-clock time: unknown" in captured.out
    for heading in HEADINGS:
        assert heading in captured.out


def test_card_of_a_bad_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "x.ckpt").write_bytes(b"nonsense")
    assert main(["card", str(tmp_path / "x.ckpt")]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.parametrize("value", ["é ünïcode", "plain"])
def test_non_latin1_values_round_trip(tmp_path, value):
    from gans.sampling.provenance import make_info, save_image

    save_image(torch.rand(1, 3, 4, 4), tmp_path / "x.png", make_info("grid", note=value + " ✓"))
    assert read_info(tmp_path / "x.png")["note"] == value + " ✓"


def test_text_chunks_added_to_a_png_made_elsewhere(tmp_path):
    import io

    from gans.sampling.provenance import add_text_chunks, make_info

    buffer = io.BytesIO()
    Image.new("RGB", (5, 3), (10, 20, 30)).save(buffer, format="png")
    tagged = add_text_chunks(buffer.getvalue(), make_info("bench-plot", note="ü ✓"))
    (tmp_path / "plot.png").write_bytes(tagged)
    info = read_info(tmp_path / "plot.png")
    assert info["kind"] == "bench-plot" and info["note"] == "ü ✓"
    assert Image.open(tmp_path / "plot.png").tobytes() == Image.open(buffer).tobytes()


def test_card_reads_fid_and_its_protocol_from_the_run_log(trained_run, tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    (tmp_path / "checkpoints").mkdir()
    shutil.copy(trained_run / "checkpoints" / "last.ckpt", tmp_path / "checkpoints" / "x.ckpt")
    writer = SummaryWriter(str(tmp_path))
    writer.add_text("fid/protocol", "FID test-extractor, 100 generated vs 200 real", 0)
    for step, fid in ((10, 80.0), (20, 60.5), (30, 70.25)):
        writer.add_scalar("fid", fid, step)
    writer.close()
    assert main(["card", str(tmp_path / "checkpoints" / "x.ckpt")]) == 0
    card = capsys.readouterr().out
    assert "| FID, last | 70.25 | 30 |" in card and "| FID, best | 60.50 | 20 |" in card
    assert "Protocol: FID test-extractor, 100 generated vs 200 real." in card
