"""Background work (walk videos, projections): a thread per job, with progress, a cancel flag and a result
file in the server's own temporary folder, removed when the job is evicted or the server
stops."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from gans.serve.backend import GansError
from gans.serve.explorer import Cancelled


class TooBusy(GansError):
    """More jobs running than the server takes at once (HTTP 429)."""


@dataclass
class Job:
    id: str
    kind: str
    params: dict
    folder: Path
    state: str = "queued"  # queued, running, done, error, cancelled
    progress: float = 0.0
    message: str = ""
    result: Optional[Path] = None
    media_type: str = "application/octet-stream"
    started: float = field(default_factory=time.time)
    finished: Optional[float] = None
    cancel: threading.Event = field(default_factory=threading.Event)
    details: dict = field(default_factory=dict)  # what a kind of job shows while it runs

    def status(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state,
                "progress": round(self.progress, 3), "message": self.message,
                "params": self.params,
                "result": f"/api/jobs/{self.id}/result" if self.state == "done" else None,
                "seconds": round((self.finished or time.time()) - self.started, 2),
                **self.details}


class Jobs:
    def __init__(self, max_running: int = 2, max_kept: int = 16):
        self.max_running, self.max_kept = max_running, max_kept
        self.folder = Path(tempfile.mkdtemp(prefix="gans-serve-"))
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, params: dict, work: Callable[[Job], None]) -> Job:
        with self._lock:
            running = sum(j.state in ("queued", "running") for j in self._jobs.values())
            if running >= self.max_running:
                raise TooBusy(f"{running} jobs are running, the most this server runs at once; "
                              "wait for one or cancel it (POST /api/jobs/ID/cancel)")
            job = Job(uuid.uuid4().hex[:12], kind, params, self.folder / uuid.uuid4().hex)
            job.folder.mkdir()
            self._jobs[job.id] = job
            self._evict()
        threading.Thread(target=self._run, args=(job, work), daemon=True,
                         name=f"gans-serve-{kind}-{job.id}").start()
        return job

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        job.state = "running"
        try:
            work(job)
            job.state, job.progress = "done", 1.0
        except Cancelled:
            job.state, job.message = "cancelled", "cancelled"
        except GansError as exc:
            job.state, job.message = "error", str(exc)
        except Exception as exc:  # a job never takes the server down; the message says why
            job.state, job.message = "error", f"{exc.__class__.__name__}: {exc}"
        finally:
            job.finished = time.time()

    def _evict(self) -> None:
        finished = [j for j in self._jobs.values() if j.state not in ("queued", "running")]
        for job in sorted(finished, key=lambda j: j.started)[:max(0, len(self._jobs)
                                                                  - self.max_kept)]:
            self._jobs.pop(job.id)
            shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            from gans.serve.library import NotFound

            raise NotFound(f"job {job_id!r}: no such job (finished jobs are kept for a while, "
                           "then removed)")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancel.set()
        if job.state == "queued":
            job.state = "cancelled"
        return job

    def close(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel.set()
        shutil.rmtree(self.folder, ignore_errors=True)
