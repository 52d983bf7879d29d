"""Routes of `gans serve`: the page, its static files and the JSON API under /api.

Every parameter is read from the query string and checked here, before any work starts, so a
bad one costs nothing and answers with one line naming the parameter and its allowed range.
The limits keep one request from holding the CPU or memory for long: a grid is at most 64
images, a walk at most 8 seeds x 48 frames, a projection at most 1,000 steps, an uploaded image
or drawing at most 8 MiB.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path
from typing import Optional

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gans.serve.backend import (GansError, __version__, as_signed, make_info, resolve_class,
                                write_animation)
from gans.serve.explorer import (SPACES, Cell, ModelCache, NearestIndexes, around_projection,
                                 cell_png, grid_cells, png_bytes, project_image,
                                 projection_target, render_cells, style_mix, training_png,
                                 translate_drawing, walk_frames)
from gans.serve.jobs import Jobs, TooBusy
from gans.serve.library import BadPath, Library, NotFound

STATIC = Path(__file__).with_name("static")
SEED_MAX = 2 ** 31 - 1
GRID_MAX = 64
MIX_SEEDS_MAX = 8
WALK_SEEDS_MAX = 8
FRAMES_MAX = 48
NEIGHBOURS_MAX = 32
PROJECT_STEPS_MAX = 1000
UPLOAD_MAX = 8 << 20  # bytes of an uploaded image (to project) or drawing (to translate)
TRUNCATE_Z = (0.1, 10.0)
# No outside fetches, ever: the page is self-contained and so is every image it shows.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; "
                                 b"media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
                                 b"object-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class BadRequest(GansError):
    """A parameter outside what the API takes (HTTP 400)."""


STATUS = {BadRequest: 400, BadPath: 400, NotFound: 404, TooBusy: 429}


# ----------------------------------------------------------------------------- parameters


class Query:
    """Typed, range-checked access to a request's query parameters."""

    def __init__(self, request: Request):
        self.params = request.query_params

    def text(self, name: str, default: Optional[str] = None) -> Optional[str]:
        value = self.params.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def required(self, name: str, example: str) -> str:
        value = self.text(name)
        if value is None:
            raise BadRequest(f"{name}: missing; e.g. {name}={example}")
        return value

    def integer(self, name: str, default: Optional[int], low: int, high: int) -> Optional[int]:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?\d{1,12}", value):
            raise BadRequest(f"{name}={value!r}: expected a whole number from {low} to {high}")
        number = int(value)
        if not low <= number <= high:
            raise BadRequest(f"{name}={number}: must be from {low} to {high}")
        return number

    def number(self, name: str, low: float, high: float, open_low: bool = False
               ) -> Optional[float]:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        inside = (low < number if open_low else low <= number) and number <= high
        if not inside:  # NaN lands here too
            bracket = "(" if open_low else "["
            raise BadRequest(f"{name}={value!r}: must be a number in {bracket}{low:g}, {high:g}]")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise BadRequest(f"{name}={value!r}: expected 1 or 0")

    def seeds(self, name: str, low_count: int, high_count: int, example: str) -> list:
        value = self.required(name, example)
        parts = [p.strip() for p in value.split(",")]
        if not all(re.fullmatch(r"\d{1,10}", p) for p in parts):
            raise BadRequest(f"{name}={value!r}: expected seeds from 0 to {SEED_MAX} separated "
                             f"by commas, e.g. {name}={example}")
        seeds = [int(p) for p in parts]
        if any(s > SEED_MAX for s in seeds):
            raise BadRequest(f"{name}: seeds must be from 0 to {SEED_MAX}")
        if not low_count <= len(seeds) <= high_count:
            raise BadRequest(f"{name}: give {low_count} to {high_count} seeds, got {len(seeds)}")
        return seeds

    def choice(self, name: str, options: tuple, default: str) -> str:
        value = self.text(name, default)
        if value not in options:
            raise BadRequest(f"{name}={value!r}: expected one of {', '.join(options)}")
        return value


# ----------------------------------------------------------------------------- helpers


def _model(request: Request, query: Query, name: str = "ckpt", wants: Optional[str] = "noise"):
    """The checkpoint a request names, loaded. `wants`: "noise" (a model that makes images
    from seeds), "sketch" (an image-to-image model, pix2pix) or None (either)."""
    path = request.app.state.library.checkpoint(query.required(name, "runs/tiny/version_0/"
                                                                     "checkpoints/last.ckpt"))
    model = request.app.state.models.get(path, use_ema=query.flag("ema", True))
    if wants == "noise" and model.translates:
        raise BadRequest(f"{name}: {path.name} of {model.recipe.name} is an image-to-image "
                         "model (pix2pix): it makes images from drawings, not from seeds; "
                         "draw in the Sketch panel (POST /api/sketch)")
    if wants == "sketch" and not model.translates:
        raise BadRequest(f"{name}: {path.name} of {model.recipe.name} makes images from noise; "
                         "sketches need a pix2pix run (an image-to-image checkpoint, trained "
                         "with recipes/pix2pix/)")
    return model


def _class(model, query: Query) -> Optional[int]:
    text = query.text("class")
    if text is None or text.lower() == "all":
        return None
    if not model.names:
        raise BadRequest(f"class={text!r}: this checkpoint's model is not class-conditional "
                         "(trained without data.conditional: true); leave class out")
    try:
        return resolve_class(text, model.names)
    except GansError as exc:
        raise BadRequest(str(exc).replace("--class ", "class=", 1)) from None


def _truncation(model, query: Query) -> tuple:
    psi = query.number("psi", 0.0, 1.0)
    if psi is not None and not model.describe()["truncation"]:
        raise BadRequest(f"psi: the {type(model.generator).__name__} of this checkpoint has no "
                         "truncation psi (it needs a mapping network, as stylegan-lite has); "
                         f"use tz (z truncation, any model) instead")
    return psi, query.number("tz", *TRUNCATE_Z)


async def _upload(request: Request, what: str) -> bytes:
    """The request body (an image file), refused as soon as it passes UPLOAD_MAX bytes."""
    limit = f"over the {UPLOAD_MAX >> 20} MiB limit; send a smaller PNG or JPEG"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > UPLOAD_MAX:
        raise BadRequest(f"the {what} is {int(declared)} bytes, {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > UPLOAD_MAX:
            raise BadRequest(f"the {what} is {limit}")
    return bytes(body)


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _png(data: bytes, filename: Optional[str] = None) -> Response:
    headers = {"cache-control": "no-store"}
    if filename:
        headers["content-disposition"] = f'attachment; filename="{filename}"'
    return Response(data, media_type="image/png", headers=headers)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "gans"


# ----------------------------------------------------------------------------- routes


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


async def api_root(request: Request) -> Response:
    return JSONResponse({"gans": __version__, "roots": list(request.app.state.library.roots),
                         "docs": "docs/explorer.md"})


async def runs(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(request.app.state.library.listing))


async def run_detail(request: Request) -> Response:
    query = Query(request)
    library: Library = request.app.state.library
    ident = query.required("run", "runs/tiny/version_0")

    def work():
        path = library.run(ident)
        root = library.roots[ident.split("/")[0]]
        return {**library.describe_run(root, path), **library.curves(path)}

    return JSONResponse(await run_in_threadpool(work))


async def run_sample(request: Request) -> Response:
    query = Query(request)
    path = request.app.state.library.run_sample(query.required("run", "runs/tiny/version_0"),
                                                query.required("name", "step_0000250.png"))
    return FileResponse(path, media_type="image/png")


async def model_info(request: Request) -> Response:
    query = Query(request)
    model = await run_in_threadpool(_model, request, query, "ckpt", None)
    return JSONResponse({"ckpt": query.text("ckpt"), **model.describe()})


async def sample(request: Request) -> Response:
    """A grid as JSON: each image a PNG data URL (with provenance) and its download URL."""
    query = Query(request)
    seed = query.integer("seed", 0, 0, SEED_MAX - GRID_MAX)
    num = query.integer("n", 16, 1, GRID_MAX)

    def work():
        model = _model(request, query)
        label = _class(model, query)
        psi, tz = _truncation(model, query)
        cells = grid_cells(model, seed, num, label)
        images = render_cells(model, cells, psi, tz)
        base = {k: v for k, v in request.query_params.items() if k in ("ckpt", "ema", "psi", "tz")}
        out = []
        for cell, image in zip(cells, images):
            params = {**base, "seed": cell.seed}
            if cell.label is not None:
                params["class"] = cell.label
            out.append({"seed": cell.seed, "class": cell.label,
                        "class_name": None if cell.label is None else model.names[cell.label],
                        "src": _data_url(cell_png(model, cell, image, psi, tz)),
                        "href": "/api/image?" + "&".join(f"{k}={_quote(v)}"
                                                         for k, v in params.items())})
        return {"model": model.describe(), "seed": seed, "n": num, "psi": psi, "tz": tz,
                "class": label, "images": out}

    return JSONResponse(await run_in_threadpool(work))


def _quote(value) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


async def image(request: Request) -> Response:
    """One image as a PNG file, the same as `gans sample --seed S --num 1` writes."""
    query = Query(request)
    seed = query.integer("seed", 0, 0, SEED_MAX)

    def work():
        model = _model(request, query)
        label = _class(model, query)
        if label is None and model.names:
            label = 0  # gans sample --num 1 of a conditional model: class 0
        psi, tz = _truncation(model, query)
        cell = Cell(seed, label)
        png = cell_png(model, cell, render_cells(model, [cell], psi, tz)[0], psi, tz)
        suffix = "" if label is None else f"-{_slug(model.names[label])}"
        return _png(png, f"{_slug(model.recipe.name)}-seed{seed}{suffix}.png")

    return await run_in_threadpool(work)


async def mix(request: Request) -> Response:
    query = Query(request)
    rows = query.seeds("rows", 1, MIX_SEEDS_MAX, "1,2,3")
    cols = query.seeds("cols", 1, MIX_SEEDS_MAX, "4,5,6")

    def work():
        model = _model(request, query)
        info = model.describe()
        if not info["style_mixing"]:
            raise BadRequest(f"style mixing: the {info['generator']} of this checkpoint has no "
                             "per-layer styles (it needs a mapping network, as stylegan-lite "
                             "has); pick a style model")
        layers = _layers(query.text("layers"), info["num_ws"], info["default_layers"])
        label = _class(model, query)
        if label is None and model.names:
            raise BadRequest(f"class: this checkpoint is class-conditional; style mixing needs "
                             f"one class (one of: {', '.join(model.names)})")
        psi, _ = _truncation(model, query)
        grid = style_mix(model, rows, cols, layers, psi, label)
        info_chunks = make_info("style-mix", **model.provenance(
            seeds=f"rows {','.join(map(str, rows))}; columns {','.join(map(str, cols))}",
            layers=f"{layers[0]}-{layers[1]}", truncation=psi,
            **{"class": None if label is None else model.names[label]}))
        return _png(png_bytes(grid, info_chunks, nrow=len(cols) + 1),
                    f"{_slug(model.recipe.name)}-style-mix.png")

    return await run_in_threadpool(work)


def _layers(text: Optional[str], num_ws: int, default: list) -> tuple:
    if text is None:
        return tuple(default)
    match = re.fullmatch(r"(\d{1,3})-(\d{1,3})", text)
    start, stop = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not (match and 0 <= start < stop <= num_ws):
        raise BadRequest(f"layers={text!r}: expected START-STOP with 0 <= START < STOP <= "
                         f"{num_ws} (the model's style layers), e.g. layers="
                         f"{default[0]}-{default[1]}")
    return start, stop


async def walk(request: Request) -> Response:
    """Starts a walk video in the background; answers 202 with the job to poll."""
    query = Query(request)
    seeds = query.seeds("seeds", 2, WALK_SEEDS_MAX, "1,2,3")
    frames = query.integer("frames", 16, 2, FRAMES_MAX)
    fps = query.integer("fps", 12, 1, 60)
    fmt = query.choice("format", ("gif", "mp4"), "gif")
    if fmt == "mp4":
        try:
            import av  # noqa: F401  (write_animation's mp4 writer)
        except ImportError:
            raise BadRequest("format=mp4 needs PyAV on the server (pip install av); "
                             "use format=gif") from None

    model = await run_in_threadpool(_model, request, query)
    label = _class(model, query)
    if label is None and model.names:
        raise BadRequest(f"class: this checkpoint is class-conditional; a walk needs one class "
                         f"(one of: {', '.join(model.names)})")
    psi, tz = _truncation(model, query)

    def work(job):
        images = walk_frames(model, seeds, frames, psi, tz, label,
                             progress=lambda p: setattr(job, "progress", 0.95 * p),
                             cancelled=job.cancel.is_set)
        job.message = "encoding"
        target = job.folder / f"{_slug(model.recipe.name)}-walk.{fmt}"
        write_animation(images, str(target), fps, frames, model.provenance(
            seeds=seeds, frames=frames, truncation=psi, truncate_z=tz,
            **{"class": None if label is None else model.names[label]}))
        job.result, job.media_type = target, "image/gif" if fmt == "gif" else "video/mp4"
        job.message = ""

    params = {"ckpt": query.text("ckpt"), "seeds": seeds, "frames": frames, "fps": fps,
              "format": fmt}
    job = request.app.state.jobs.start("walk", params, work)
    return JSONResponse(job.status(), status_code=202)


async def project(request: Request) -> Response:
    """Starts projecting an image into the model: the request body is an uploaded image file,
    or without one the model's own image of `seed` (and `class`) is the target. Answers 202
    with the job; its status carries the snapshots (`frames`, data URLs) as they come."""
    query = Query(request)
    space = query.choice("space", ("z", "w", "w+"), "z")
    steps = query.integer("steps", 200, 1, PROJECT_STEPS_MAX)
    seed = query.integer("seed", 0, 0, SEED_MAX)
    body = await _upload(request, "image")
    model = await run_in_threadpool(_model, request, query)
    if space != "z" and not model.describe()["style_mixing"]:
        raise BadRequest(f"space={space}: the {model.describe()['generator']} of this "
                         "checkpoint has no w space (it needs a mapping network, as "
                         "stylegan-lite has); use space=z")
    find = (query.text("class") or "").lower() == "best"
    label = None if find else _class(model, query)
    if model.names and label is None and not find and space == "z":
        raise BadRequest("class: this checkpoint is class-conditional; a z projection needs "
                         f"a class, or class=best (one of: {', '.join(model.names)})")
    if find and not model.names:
        raise BadRequest("class=best: this checkpoint's model is not class-conditional; "
                         "leave class out")
    jobs = request.app.state.jobs

    def target_of():
        # Decoded here, before the job starts: a bad upload is a 400 naming what is wrong.
        if not body:
            cell = Cell(seed, label if label is not None or not model.names else 0)
            return projection_target(model, cell_png(model, cell, render_cells(model, [cell])[0]))
        try:
            return projection_target(model, body)
        except GansError as exc:
            raise BadRequest(str(exc)) from None

    target = await run_in_threadpool(target_of)

    def work(job):
        def progress(step, image):
            job.progress = (step + 1) / steps
            job.details["frames"] = job.details.get("frames", []) + [_data_url(png_bytes(
                image.clamp(-1, 1), make_info("projection-progress", step=step)))]

        found = project_image(model, target, space, steps, label, find, progress,
                              job.cancel.is_set)
        job.details.update(projection=found, psnr_db=round(found.psnr, 2),
                           found_class=None if found.label is None else model.names[found.label])
        result = job.folder / f"{_slug(model.recipe.name)}-projection.png"
        result.write_bytes(png_bytes(found.image.clamp(-1, 1), make_info("projection", **(
            model.provenance(space=space, steps=steps, psnr_db=round(found.psnr, 2))))))
        job.result, job.media_type = result, "image/png"

    params = {"ckpt": query.text("ckpt"), "space": space, "steps": steps,
              "source": "upload" if body else f"seed {seed}"}
    job = jobs.start("project", params, work)
    return JSONResponse(_public(job.status()), status_code=202)


def _public(status: dict) -> dict:
    """A job's status as JSON: the projection itself stays on the server."""
    return {k: v for k, v in status.items() if k != "projection" and not k.startswith("_")}


async def around(request: Request) -> Response:
    """Images from a finished projection: kind=vary (n, spread, seed), mix (seeds) or toward
    (class), as PNG."""
    query = Query(request)
    job = request.app.state.jobs.get(request.path_params["job"])
    found = job.details.get("projection")
    if job.kind != "project" or found is None:
        raise BadRequest(f"job {job.id} is not a finished projection ({job.kind}, {job.state})")
    kind = query.choice("kind", ("vary", "mix", "toward"), "vary")
    num = query.integer("n", 8, 1, GRID_MAX - 1)
    spread = query.number("spread", 0.0, 4.0, open_low=True) or 0.5
    seed = query.integer("seed", 0, 0, SEED_MAX)
    seeds = query.seeds("seeds", 1, MIX_SEEDS_MAX, "1,2,3") if kind == "mix" else None

    def work():
        model = _model(request, query)
        label = _class(model, query)
        if kind == "toward" and label is None:
            raise BadRequest("kind=toward needs class=NAME"
                             + (f" (one of: {', '.join(model.names)})" if model.names else
                                "; this checkpoint's model is not class-conditional"))
        images, nrow = around_projection(model, found, kind, num, spread, seed, seeds, label)
        info = make_info(f"projection-{kind}", **model.provenance(
            space=found.space, spread=spread if kind == "vary" else None))
        return png_bytes(images.clamp(-1, 1), info, nrow=nrow)

    return _png(await run_in_threadpool(work))


async def job_status(request: Request) -> Response:
    return JSONResponse(_public(request.app.state.jobs.get(request.path_params["job"]).status()))


async def job_cancel(request: Request) -> Response:
    return JSONResponse(_public(request.app.state.jobs.cancel(request.path_params["job"])
                                .status()))


async def job_result(request: Request) -> Response:
    job = request.app.state.jobs.get(request.path_params["job"])
    if job.state != "done" or job.result is None:
        raise BadRequest(f"job {job.id} is {job.state}; its result comes when it is done")
    return FileResponse(job.result, media_type=job.media_type, filename=job.result.name)


async def nearest(request: Request) -> Response:
    """The training images nearest to one generated image, with distances and a yardstick."""
    query = Query(request)
    seed = query.integer("seed", 0, 0, SEED_MAX)
    k = query.integer("k", 8, 1, NEIGHBOURS_MAX)
    space = query.choice("space", SPACES, "pixels")

    def work():
        model = _model(request, query)
        label = _class(model, query)
        if label is None and model.names:
            label = 0
        psi, tz = _truncation(model, query)
        cell = Cell(seed, label)
        generated = render_cells(model, [cell], psi, tz)[0]
        index = request.app.state.indexes.get(model, space)
        found = index.search(generated, k)
        names = index.label_names
        return {
            "seed": seed, "class": label, "space": space, "index_size": len(index.features),
            "data": index.description, "build_seconds": index.seconds,
            "typical": index.typical,
            "query": _data_url(cell_png(model, cell, generated, psi, tz)),
            "neighbours": [{"index": i, "distance": d,
                            "label": None if index.labels is None else int(index.labels[i]),
                            "label_name": None if index.labels is None or not names
                            else names[int(index.labels[i])],
                            "src": _data_url(training_png(index, i))} for i, d in found]}

    return JSONResponse(await run_in_threadpool(work))


async def sketch(request: Request) -> Response:
    """A drawing (the request body: PNG or JPEG bytes, e.g. the page's canvas) through an
    image-to-image model: the model's input, normalised as `gans sample --sketch` does it, and
    the image (with provenance), both as PNG data URLs."""
    query = Query(request)
    seed = query.integer("seed", 0, 0, SEED_MAX)
    body = await _upload(request, "drawing")

    def work():
        model = _model(request, query, wants="sketch")
        condition, image = translate_drawing(model, body, seed)
        info = make_info("sketch", **model.provenance(sketch="canvas", seeds=seed))
        return {"seed": seed, "resolution": model.recipe.data.resolution,
                "input": _data_url(png_bytes(as_signed(condition), {})),
                "output": _data_url(png_bytes(image, info))}

    return JSONResponse(await run_in_threadpool(work))


# ----------------------------------------------------------------------------- app


async def _error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    return JSONResponse({"error": str(exc)}, status_code=status)


async def _crash(request: Request, exc: Exception) -> Response:
    # A bug still answers in the API's shape, so the page shows a message, not a blank panel.
    return JSONResponse({"error": f"internal error ({exc.__class__.__name__}: {exc}); "
                                  "please report it"}, status_code=500)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"{request.url.path}: no such page or API route; the API is "
                                  "listed in docs/explorer.md"}, status_code=404)


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(paths: list, allowed_hosts: Optional[list] = None) -> Starlette:
    """The explorer over the runs and checkpoints under `paths`. `allowed_hosts`: the Host
    headers accepted (a page on another site cannot then reach a loopback server through a
    DNS name of its own); None accepts any."""
    library = Library(paths)
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    routes = [
        Route("/", index),
        Route("/api", api_root),
        Route("/api/runs", runs),
        Route("/api/run", run_detail),
        Route("/api/run/sample", run_sample),
        Route("/api/model", model_info),
        Route("/api/sample", sample),
        Route("/api/image", image),
        Route("/api/style-mix", mix),
        Route("/api/walk", walk, methods=["POST"]),
        Route("/api/project", project, methods=["POST"]),
        Route("/api/jobs/{job}/around", around),
        Route("/api/jobs/{job}", job_status),
        Route("/api/jobs/{job}/cancel", job_cancel, methods=["POST"]),
        Route("/api/jobs/{job}/result", job_result),
        Route("/api/nearest", nearest),
        Route("/api/sketch", sketch, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    jobs = Jobs()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            jobs.close()

    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={GansError: _error, HTTPException: _error,
                                        404: _not_found, Exception: _crash},
                    lifespan=lifespan)
    app.state.library = library
    app.state.models = ModelCache()
    app.state.indexes = NearestIndexes()
    app.state.jobs = jobs
    return app
