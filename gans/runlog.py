"""A run's TensorBoard log, read once: scalars by tag, texts such as the FID protocol, and how
long the run trained.

Lightning's TensorBoardLogger writes one event file per training session (the first, and each
resume) into the run directory. A session lasts from its file's first event to its last, so
the time a run spent stopped between a kill and its resume is not counted. The model card,
`gans bench` and anything else that shows a run's history read the files here:

    log = read_run(run_dir)
    log.scalars("fid")        [(step, wall_time, value)], every value in the order written
    log.curve("fid")          [(step, training seconds, value)], one per step, in step order
    log.last("kimg")          the latest value, or None
    log.text("fid/protocol")  the latest text, or None
    log.seconds               training time over all sessions
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

EVENT_FILES = "events.out.tfevents.*"
TEXT_SUFFIX = "/text_summary"  # torch's add_text appends it to the tag it is given


@dataclass(frozen=True)
class Session:
    """One event file: one training session."""

    start: float  # wall time (seconds since the epoch) of its first event
    end: float  # of its latest
    scalars: tuple  # (tag, step, wall_time, value), in the order written
    texts: tuple  # (tag, step, wall_time, text), tags as logged (without TEXT_SUFFIX)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class RunLog:
    sessions: tuple  # in the order they began; empty when the run has no readable log

    @property
    def seconds(self) -> float:
        """Training time: the sessions' lengths summed, the gaps between them left out."""
        return sum(s.seconds for s in self.sessions)

    def tags(self) -> list:
        """The tags that have scalars, sorted."""
        return sorted({tag for s in self.sessions for tag, *_ in s.scalars})

    def scalars(self, tag: str) -> list:
        """[(step, wall_time, value)] of one tag, every value in the order written: a step
        logged again after a resume appears twice."""
        return [(step, wall, value) for s in self.sessions
                for t, step, wall, value in s.scalars if t == tag]

    def last(self, tag: str) -> Optional[float]:
        values = self.scalars(tag)
        return values[-1][2] if values else None

    def curve(self, tag: str) -> list:
        """[(step, seconds, value)] of one tag in step order, `seconds` being the training time
        when the value was written; a step logged again after a resume keeps its latest value,
        which is the one the run's later steps grew from."""
        by_step, offset = {}, 0.0
        for s in self.sessions:
            for t, step, wall, value in s.scalars:
                if t == tag:
                    by_step[step] = (step, offset + wall - s.start, value)
            offset += s.seconds
        return [by_step[step] for step in sorted(by_step)]

    def text(self, tag: str) -> Optional[str]:
        """The latest text logged under `tag`, or None."""
        found = [text for s in self.sessions for t, _, _, text in s.texts if t == tag]
        return found[-1] if found else None


def read_run(run_dir: Path) -> RunLog:
    """The log of a run directory (runs/<name>/version_<n>/); a folder without event files
    gives an empty log, and a file cut short by a kill what it holds so far."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util.tensor_util import make_ndarray

    sessions = []
    for path in Path(run_dir).glob(EVENT_FILES):
        walls, scalars, texts = [], [], []
        try:
            for event in EventFileLoader(str(path)).Load():
                walls.append(event.wall_time)
                for value in event.summary.value:
                    kind = value.WhichOneof("value")
                    if kind == "simple_value":
                        number = value.simple_value
                    elif kind == "tensor":
                        # Current TensorBoard hands scalars over as 0-d tensors, texts as
                        # arrays of bytes.
                        array = make_ndarray(value.tensor)
                        if value.metadata.plugin_data.plugin_name == "text":
                            item = array.flat[0] if array.size else b""
                            texts.append((value.tag.removesuffix(TEXT_SUFFIX), event.step,
                                          event.wall_time, item.decode()
                                          if isinstance(item, bytes) else str(item)))
                            continue
                        if array.size != 1 or array.dtype.kind not in "fiu":
                            continue
                        number = float(array.flat[0])
                    else:
                        continue
                    scalars.append((value.tag, event.step, event.wall_time, number))
        except Exception:  # a file cut by a kill: what was read stays good
            pass
        if walls:
            sessions.append(Session(walls[0], max(walls), tuple(scalars), tuple(texts)))
    sessions.sort(key=lambda s: s.start)
    return RunLog(tuple(sessions))
