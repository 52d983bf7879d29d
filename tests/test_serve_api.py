"""The explorer's JSON API through Starlette's test client, on tiny trained checkpoints."""

import base64
import io
import os
import shutil
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from gans.cli import main
# Through the explorer's adapter, so these tests follow it when sampling and provenance move.
from gans.serve.backend import generate, load_generator, read_info, style_mixing_grid, to_pil

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from gans.serve.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(serve_runs):
    with TestClient(create_app([str(serve_runs)])) as c:
        yield c


def pixels(png: bytes) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(io.BytesIO(png)).convert("RGB"))).int()


def data_url_bytes(src: str) -> bytes:
    assert src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def wait_for(client, job_id: str, limit: float = 60) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after {limit} s")


# ----------------------------------------------------------------------------- runs


def test_runs_lists_recipe_steps_fid_and_samples(client):
    listing = client.get("/api/runs").json()
    (run,) = [r for r in listing["runs"] if r["id"] == "runs/dcgan-tiny/version_0"]
    assert run["recipe"]["generator"] == "dcgan" and run["recipe"]["resolution"] == 16
    assert run["steps"] == 6 and run["kimg"] == pytest.approx(0.048, abs=1e-3)
    assert run["best_fid"] == {"step": 4, "value": 250.5}
    assert "test-protocol" in run["fid_protocol"]
    assert [c["name"] for c in run["checkpoints"]] == ["last.ckpt"]
    assert run["samples"] == ["step_0000002.png", "step_0000004.png", "step_0000006.png"]


def test_run_curves_and_sample_grids(client):
    detail = client.get("/api/run", params={"run": "runs/dcgan-tiny/version_0"}).json()
    assert detail["curves"]["fid"] == [[2, 300.0], [4, 250.5], [6, 260.0]]
    assert len(detail["curves"]["loss/generator"]) == 6
    grid = client.get("/api/run/sample", params={"run": "runs/dcgan-tiny/version_0",
                                                 "name": "step_0000004.png"})
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    assert read_info(_write(grid.content))["step"] == "4"


def _write(data: bytes, name: str = "x.png"):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / name
    path.write_bytes(data)
    return path


def test_a_checkpoint_written_later_appears_and_reloads(client, serve_runs, dcgan_ckpt):
    """A live run: a new checkpoint is listed, and a rewritten one is served fresh."""
    folder = serve_runs / "dcgan-tiny" / "version_0" / "checkpoints"
    extra = folder / "extra.ckpt"
    shutil.copy(folder / "last.ckpt", extra)
    try:
        names = [c["name"] for r in client.get("/api/runs").json()["runs"]
                 for c in r["checkpoints"]]
        assert "extra.ckpt" in names
        ident = "runs/dcgan-tiny/version_0/checkpoints/extra.ckpt"
        before = client.get("/api/image", params={"ckpt": ident, "seed": 3}).content
        ckpt = torch.load(extra, weights_only=True)
        for key in ckpt["state_dict"]:
            if key.startswith("g_ema.") and ckpt["state_dict"][key].is_floating_point():
                ckpt["state_dict"][key] = ckpt["state_dict"][key] * 0.5
        torch.save(ckpt, extra)
        stamp = time.time() + 5  # a new mtime even on a coarse clock
        os.utime(extra, (stamp, stamp))
        after = client.get("/api/image", params={"ckpt": ident, "seed": 3}).content
        assert not torch.equal(pixels(before), pixels(after))
    finally:
        extra.unlink()


# ----------------------------------------------------------------------------- sampling


def test_grid_images_are_gans_sample_images_with_provenance(client, serve_runs, dcgan_ckpt,
                                                            tmp_path):
    answer = client.get("/api/sample", params={"ckpt": dcgan_ckpt, "seed": 5, "n": 4}).json()
    assert [image["seed"] for image in answer["images"]] == [5, 6, 7, 8]
    out = tmp_path / "one/"
    assert main(["sample", str(serve_runs.parent / dcgan_ckpt), "--seed", "7", "--num", "1",
                 "--out", f"{out}/"]) == 0
    cli_png = (out / "seed7_00000.png").read_bytes()
    page_png = data_url_bytes(answer["images"][2]["src"])
    assert torch.equal(pixels(cli_png), pixels(page_png))
    download = client.get(answer["images"][2]["href"])
    assert download.headers["content-disposition"].startswith("attachment")
    assert torch.equal(pixels(download.content), pixels(cli_png))
    info, cli_info = read_info(_write(download.content)), read_info(out / "seed7_00000.png")
    for key in ("kind", "checkpoint", "checkpoint_sha256", "recipe_sha256", "weights", "seeds"):
        assert info[key] == cli_info[key], key


def test_truncation_and_class_change_the_images(client, style_ckpt):
    def grid(**params):
        answer = client.get("/api/sample", params={"ckpt": style_ckpt, "n": 4, **params})
        assert answer.status_code == 200, answer.text
        return [pixels(data_url_bytes(i["src"])) for i in answer.json()["images"]], answer.json()

    plain, answer = grid()
    assert [i["class"] for i in answer["images"]] == [0, 1, 2, 3]  # every class in turn
    sneakers, answer = grid(**{"class": "sneaker"})
    assert {i["class_name"] for i in answer["images"]} == {"Sneaker"}
    assert not torch.equal(plain[1], sneakers[1])
    truncated, _ = grid(**{"class": "sneaker", "psi": "0.3"})
    assert not torch.equal(sneakers[0], truncated[0])
    again, _ = grid(**{"class": "sneaker"})
    assert all(torch.equal(a, b) for a, b in zip(sneakers, again))


def test_concurrent_requests_give_the_sequential_images(serve_runs, style_ckpt):
    """StyleGAN-lite draws noise from the global RNG per seed: threads must not interleave."""
    import json
    import urllib.request

    from serving import running_server

    def fetch(seed):
        query = f"ckpt={style_ckpt}&seed={seed}&n=4&class=bag"
        with urllib.request.urlopen(f"{url}/api/sample?{query}", timeout=60) as response:
            answer = json.load(response)
        return [pixels(data_url_bytes(i["src"])) for i in answer["images"]]

    with running_server([serve_runs]) as url:
        expected = {seed: fetch(seed) for seed in (0, 10, 20, 30)}
        results, errors = _fetch_concurrently(fetch, expected)
    assert not errors
    assert sum(len(runs) for runs in results.values()) == 8
    for seed, runs in results.items():
        for images in runs:
            assert all(torch.equal(a, b) for a, b in zip(images, expected[seed]))


def _fetch_concurrently(fetch, expected):
    results, errors = {}, []

    def worker(seed):
        try:
            results.setdefault(seed, []).append(fetch(seed))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,))
               for _ in range(2) for seed in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_style_mixing_with_the_default_layers_is_gans_sample_style_mix(client, serve_runs,
                                                                       style_ckpt):
    response = client.get("/api/style-mix", params={"ckpt": style_ckpt, "rows": "1,2",
                                                    "cols": "1,2", "class": "bag"})
    assert response.status_code == 200, response.text
    generator, _, _ = load_generator(serve_runs.parent / style_ckpt)
    expected = style_mixing_grid(generator, [1, 2], label=8)
    want = torch.from_numpy(np.array(to_pil((expected + 1) / 2, 3).convert("RGB"))).int()
    assert (pixels(response.content) - want).abs().max() <= 1  # batch vs one-by-one rounding
    other = client.get("/api/style-mix", params={"ckpt": style_ckpt, "rows": "1,2",
                                                 "cols": "1,2", "class": "bag", "layers": "0-2"})
    assert not torch.equal(pixels(other.content), pixels(response.content))
    assert read_info(_write(other.content))["layers"] == "0-2"


def test_walk_runs_in_the_background_and_can_be_cancelled(client, style_ckpt):
    start = client.post("/api/walk", params={"ckpt": style_ckpt, "seeds": "1,2",
                                             "frames": 4, "class": "bag"})
    assert start.status_code == 202
    status = wait_for(client, start.json()["id"])
    assert status["state"] == "done" and status["progress"] == 1.0
    gif = client.get(status["result"])
    assert gif.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(gif.content)) as image:
        assert image.n_frames == 8

    from gans.serve import explorer

    with explorer.GENERATION_LOCK:  # the job waits for the lock: cancel it while it waits
        job = client.post("/api/walk", params={"ckpt": style_ckpt, "seeds": "1,2,3,4",
                                               "frames": 48, "class": "bag"}).json()
        assert client.post(f"/api/jobs/{job['id']}/cancel").json()["id"] == job["id"]
    assert wait_for(client, job["id"])["state"] == "cancelled"
    refused = client.get(f"/api/jobs/{job['id']}/result")
    assert refused.status_code == 400 and "cancelled" in refused.json()["error"]


def test_nearest_training_images(client, style_ckpt):
    for space in ("pixels", "classifier"):
        answer = client.get("/api/nearest", params={"ckpt": style_ckpt, "seed": 3,
                                                    "class": "bag", "k": 5, "space": space})
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert found["index_size"] == 256 and found["typical"] > 0
        distances = [n["distance"] for n in found["neighbours"]]
        assert len(distances) == 5 and distances == sorted(distances)


def test_a_training_image_finds_itself(serve_runs, style_ckpt):
    from gans.serve.explorer import ModelCache, NearestIndexes

    model = ModelCache().get(serve_runs.parent / style_ckpt)
    index = NearestIndexes().get(model, "pixels")
    image = index.pixels[17].float() / 127.5 - 1
    (best, distance), *_ = index.search(image, 3)
    assert best == 17 and distance == pytest.approx(0, abs=0.05)  # features kept in fp16


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("ckpt, status", [
    ("../etc/passwd", 400), ("/etc/passwd", 400), ("runs/../../secret.ckpt", 400),
    ("runs/dcgan-tiny/./version_0/checkpoints/last.ckpt", 400), ("runs\\x.ckpt", 400),
    ("runs//dcgan-tiny/version_0/checkpoints/last.ckpt", 400),
    ("elsewhere/x.ckpt", 404), ("runs/dcgan-tiny/version_0/recipe.yaml", 404),
    ("runs/missing.ckpt", 404), ("runs/outside-link/secret.ckpt", 404),
])
def test_paths_outside_the_served_tree_are_refused(client, serve_runs, tmp_path, ckpt, status):
    outside = tmp_path / "secret.ckpt"
    shutil.copy(serve_runs / "dcgan-tiny" / "version_0" / "checkpoints" / "last.ckpt", outside)
    link = serve_runs / "outside-link"
    if not link.exists():
        link.symlink_to(tmp_path, target_is_directory=True)
    try:
        response = client.get("/api/sample", params={"ckpt": ckpt})
        assert response.status_code == status, response.text
        assert "ckpt" in response.json()["error"]
        listed = str(client.get("/api/runs").json())
        assert "outside-link" not in listed
    finally:
        link.unlink()


@pytest.mark.parametrize("params, words", [
    ({"n": "65"}, "n=65: must be from 1 to 64"),
    ({"n": "0"}, "n=0"),
    ({"seed": "-1"}, "seed=-1"),
    ({"seed": "1e9"}, "seed='1e9'"),
    ({"tz": "0"}, "tz='0': must be a number in [0.1, 10]"),
    ({"tz": "nan"}, "tz='nan'"),
    ({"psi": "0.5"}, "psi: the DCGANGenerator"),
    ({"class": "sneaker"}, "not class-conditional"),
    ({"ema": "maybe"}, "ema='maybe'"),
])
def test_bad_sample_parameters_are_one_line_400s(client, dcgan_ckpt, params, words):
    response = client.get("/api/sample", params={"ckpt": dcgan_ckpt, **params})
    assert response.status_code == 400
    error = response.json()["error"]
    assert words in error and "\n" not in error


@pytest.mark.parametrize("route, params, words", [
    ("/api/style-mix", {"rows": "1,2", "cols": "3", "class": "bag", "layers": "4-9"},
     "layers='4-9'"),
    ("/api/style-mix", {"rows": ",".join(map(str, range(9))), "cols": "1", "class": "bag"},
     "rows: give 1 to 8 seeds"),
    ("/api/style-mix", {"rows": "1", "cols": "2"}, "needs one class"),
    ("/api/sample", {"psi": "1.5"}, "psi='1.5': must be a number in [0, 1]"),
    ("/api/sample", {"class": "cat"}, "class='cat': not a class"),
    ("/api/nearest", {"k": "33", "class": "bag"}, "k=33"),
    ("/api/nearest", {"space": "inception", "class": "bag"}, "space='inception'"),
])
def test_bad_style_parameters(client, style_ckpt, route, params, words):
    response = client.get(route, params={"ckpt": style_ckpt, **params})
    assert response.status_code == 400 and words in response.json()["error"]


def test_bad_walks_and_unknown_jobs(client, style_ckpt, dcgan_ckpt):
    one = client.post("/api/walk", params={"ckpt": dcgan_ckpt, "seeds": "1"})
    assert one.status_code == 400 and "give 2 to 8 seeds" in one.json()["error"]
    long = client.post("/api/walk", params={"ckpt": dcgan_ckpt, "seeds": "1,2", "frames": 500})
    assert long.status_code == 400 and "frames=500" in long.json()["error"]
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/api/walk").status_code == 405
    assert client.get("/api/style-mix", params={"ckpt": dcgan_ckpt, "rows": "1",
                                                "cols": "2"}).status_code == 400


def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "gans explorer" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http" not in client.get("/static/app.js").text.replace("http://www.w3.org", "")
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/api/nothing").json()["error"].startswith("/api/nothing")


def test_host_header_is_checked_on_loopback(serve_runs):
    app = create_app([str(serve_runs)], allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1") as local:
        assert local.get("/api/runs").status_code == 200
    with TestClient(app, base_url="http://evil.example") as remote:
        assert remote.get("/api/runs").status_code == 400


# ----------------------------------------------------------------------------- command line


def test_cli_refuses_bad_paths_and_ports(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x")
    assert main(["serve", str(tmp_path / "notes.txt")]) == 2
    assert main(["serve", str(tmp_path), "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "not a checkpoint" in err and "--port must be from 0 to 65535" in err


def test_cli_port_in_use_is_one_line(tmp_path, capsys):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        assert main(["serve", str(tmp_path), "--port", str(taken.getsockname()[1])]) == 2
        err = capsys.readouterr().err.strip()
        assert "cannot listen on 127.0.0.1" in err and len(err.splitlines()) == 1
    finally:
        taken.close()


def test_server_generates_like_generate(serve_runs, dcgan_ckpt):
    """The real server over HTTP: the image of a seed is generate()'s image of that seed."""
    import urllib.request

    from serving import running_server
    with running_server([serve_runs]) as url:
        with urllib.request.urlopen(f"{url}/api/image?ckpt={dcgan_ckpt}&seed=11", timeout=30) as r:
            served = r.read()
    generator, _, _ = load_generator(serve_runs.parent / dcgan_ckpt)
    want = to_pil((generate(generator, 1, 11) + 1) / 2).convert("RGB")
    assert torch.equal(pixels(served), torch.from_numpy(np.array(want)).int())


def test_non_loopback_hosts_are_warned_about(tmp_path, capsys):
    from gans.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert main(["serve", str(tmp_path / "missing"), "--host", "0.0.0.0"]) == 2
    assert "warning: --host 0.0.0.0 is not loopback" in capsys.readouterr().err


def test_gans_serve_prints_its_url_and_serves(serve_runs):
    """The command itself, as a user starts it: the printed URL answers."""
    import json
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-m", "gans", "serve", str(serve_runs),
                                "--port", "0"], cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # printed once the socket listens
        assert line.startswith("gans serve: http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(f"{url}api/runs", timeout=30) as response:
            assert {r["id"] for r in json.load(response)["runs"]} >= {"runs/dcgan-tiny/version_0"}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_checkpoints_load_weights_only(client, serve_runs):
    """A checkpoint that would need a full unpickle (which can run code) is refused."""
    import fractions

    folder = serve_runs / "dcgan-tiny" / "version_0" / "checkpoints"
    unsafe = folder / "unsafe.ckpt"
    ckpt = torch.load(folder / "last.ckpt", weights_only=True)
    ckpt["extra"] = fractions.Fraction(1, 3)  # any class outside torch's tensor allowlist
    torch.save(ckpt, unsafe)
    try:
        response = client.get("/api/sample", params={
            "ckpt": "runs/dcgan-tiny/version_0/checkpoints/unsafe.ckpt"})
        assert response.status_code == 400
        assert "full unpickle" in response.json()["error"]
    finally:
        unsafe.unlink()


def test_the_explorer_reaches_the_rest_of_gans_through_backend_only():
    """gans/serve/backend.py is the one door: when sampling or provenance move, only it
    changes."""
    import ast
    from pathlib import Path

    import gans.serve

    for path in Path(gans.serve.__file__).parent.glob("*.py"):
        if path.name == "backend.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                assert not (name.startswith("gans") and not name.startswith("gans.serve")), \
                    f"{path.name} imports {name}; import it through gans/serve/backend.py"


def test_project_job_streams_frames_and_serves_variations(client, dcgan_ckpt, style_ckpt):
    png = client.get("/api/image", params={"ckpt": dcgan_ckpt, "seed": 9}).content
    start = client.post("/api/project", params={"ckpt": dcgan_ckpt, "steps": 30}, content=png)
    assert start.status_code == 202, start.text
    status = wait_for(client, start.json()["id"])
    assert status["state"] == "done" and status["psnr_db"] > 25
    assert len(status["frames"]) >= 2 and "projection" not in status
    result = client.get(status["result"])
    assert Image.open(io.BytesIO(result.content)).text["gans:kind"] == "projection"
    assert (pixels(result.content) - pixels(png)).abs().float().mean() < 16
    vary = client.get(f"/api/jobs/{status['id']}/around", params={
        "ckpt": dcgan_ckpt, "kind": "vary", "n": 3, "spread": 0.5})
    assert vary.status_code == 200 and Image.open(io.BytesIO(vary.content)).width > 3 * 16
    # Bad input is a 400 with one line, before any job starts.
    bad = client.post("/api/project", params={"ckpt": dcgan_ckpt}, content=b"not an image")
    assert bad.status_code == 400 and "uploaded image" in bad.json()["error"]
    tiny = io.BytesIO()
    Image.new("RGB", (4, 4)).save(tiny, format="png")
    small = client.post("/api/project", params={"ckpt": dcgan_ckpt}, content=tiny.getvalue())
    assert small.status_code == 400 and "4x4" in small.json()["error"]
    w = client.post("/api/project", params={"ckpt": dcgan_ckpt, "space": "w"}, content=png)
    assert w.status_code == 400 and "no w space" in w.json()["error"]
    z = client.post("/api/project", params={"ckpt": style_ckpt, "space": "z"})
    assert z.status_code == 400 and "class" in z.json()["error"]
    toward = client.get(f"/api/jobs/{status['id']}/around", params={
        "ckpt": dcgan_ckpt, "kind": "toward", "class": "1"})
    assert toward.status_code == 400


# ----------------------------------------------------------------------------- sketches


@pytest.fixture(scope="module")
def sketch_client(serve_runs, sketch_runs):
    with TestClient(create_app([str(serve_runs), str(sketch_runs)])) as c:
        yield c


def doodle_png(strokes: int = 2) -> bytes:
    """A quick drawing on a canvas-sized white PNG: the first `strokes` lines of a T-shirt."""
    from PIL import ImageDraw

    image = Image.new("RGB", (256, 256), "white")
    lines = [[(60, 60), (196, 60), (196, 220), (60, 220), (60, 60)],
             [(60, 60), (20, 110)], [(196, 60), (236, 110)], [(100, 60), (128, 90), (156, 60)]]
    for line in lines[:strokes]:
        ImageDraw.Draw(image).line(line, fill="black", width=8)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_drawing_is_translated_as_gans_sample_sketch_does(sketch_client, sketch_runs,
                                                            sketch_ckpt, tmp_path):
    from gans.paired import LINE, BACKGROUND

    drawing = tmp_path / "shirt.png"
    drawing.write_bytes(doodle_png(4))
    answer = sketch_client.post("/api/sketch", params={"ckpt": sketch_ckpt, "seed": 3},
                                content=drawing.read_bytes(), headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["seed"] == 3 and body["resolution"] == 32
    # The model's input: the drawing in the training edges' form (lines one value, ground the other).
    shown = pixels(data_url_bytes(body["input"]))
    assert shown.shape == (32, 32, 3) and set(shown.unique().tolist()) == {LINE, BACKGROUND}
    # The output is what `gans sample --sketch` writes for the same drawing and seed.
    out = tmp_path / "out.png"
    assert main(["sample", str(sketch_runs.parent / sketch_ckpt), "--sketch", str(drawing),
                 "--seed", "3", "--out", str(out)]) == 0
    page_png = data_url_bytes(body["output"])
    assert torch.equal(pixels(page_png), pixels(out.read_bytes()))
    info, cli_info = read_info(_write(page_png)), read_info(out)
    for key in ("kind", "checkpoint", "checkpoint_sha256", "recipe_sha256", "seeds"):
        assert info[key] == cli_info[key], key
    assert info["kind"] == "sketch"
    # Another drawing is another image; another seed is other dropout noise.
    fewer = sketch_client.post("/api/sketch", params={"ckpt": sketch_ckpt, "seed": 3},
                               content=doodle_png(1)).json()
    assert not torch.equal(pixels(data_url_bytes(fewer["output"])), pixels(page_png))
    reseeded = sketch_client.post("/api/sketch", params={"ckpt": sketch_ckpt, "seed": 4},
                                  content=drawing.read_bytes()).json()
    assert not torch.equal(pixels(data_url_bytes(reseeded["output"])), pixels(page_png))


def test_sketch_models_are_listed_and_kept_apart_from_noise_models(sketch_client, sketch_ckpt,
                                                                   dcgan_ckpt):
    model = sketch_client.get("/api/model", params={"ckpt": sketch_ckpt}).json()
    assert model["translates"] is True and model["latent_dim"] is None
    assert sketch_client.get("/api/model", params={"ckpt": dcgan_ckpt}).json()["translates"] is False
    runs = {r["id"]: r for r in sketch_client.get("/api/runs").json()["runs"]}
    assert runs["pix2pix-runs/p2p-tiny/version_0"]["recipe"]["paired"] is True
    assert runs["runs/dcgan-tiny/version_0"]["recipe"]["paired"] is False
    # Seeds mean nothing to an image-to-image model, and drawings nothing to a noise model.
    grid = sketch_client.get("/api/sample", params={"ckpt": sketch_ckpt, "n": 4})
    assert grid.status_code == 400 and "image-to-image" in grid.json()["error"]
    refused = sketch_client.post("/api/sketch", params={"ckpt": dcgan_ckpt}, content=doodle_png())
    assert refused.status_code == 400 and "need a pix2pix run" in refused.json()["error"]


@pytest.mark.parametrize("body, message", [
    (b"", "empty file"),
    (b"not a png at all", "not an image"),
    ("white", "no lines"),
])
def test_unusable_drawings_are_one_line_errors(sketch_client, sketch_ckpt, body, message):
    if body == "white":
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), "white").save(buffer, "PNG")
        body = buffer.getvalue()
    answer = sketch_client.post("/api/sketch", params={"ckpt": sketch_ckpt}, content=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert message in error and "\n" not in error


def test_an_oversized_drawing_is_refused_before_it_is_read(sketch_client, sketch_ckpt):
    from gans.serve.app import UPLOAD_MAX

    answer = sketch_client.post("/api/sketch", params={"ckpt": sketch_ckpt},
                                content=b"\0" * (UPLOAD_MAX + 1))
    assert answer.status_code == 400 and "MiB limit" in answer.json()["error"]
