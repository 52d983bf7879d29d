"""The one reader of a run's TensorBoard log: sessions, scalars, texts, training time."""

import time

import pytest

from gans.runlog import read_run


def write_sessions(folder, monkeypatch):
    """Two sessions of one run: killed after step 20, resumed hours later from step 20."""
    from torch.utils.tensorboard import SummaryWriter

    for start, steps in ((1000.0, (10, 20)), (5000.0, (20, 30))):
        with monkeypatch.context() as m:  # the file's first event: the session's start
            m.setattr(time, "time", lambda: start)
            writer = SummaryWriter(str(folder), filename_suffix=f".{int(start)}")
        for step in steps:
            writer.add_scalar("fid", 100.0 - step + (start > 1000) * 0.5, step,
                              walltime=start + 3 * step)
        writer.add_text("fid/protocol", f"protocol of session {int(start)}", steps[-1],
                        walltime=start + 3 * steps[-1])
        writer.close()


def test_time_skips_the_gap_between_sessions(tmp_path, monkeypatch):
    write_sessions(tmp_path, monkeypatch)
    log = read_run(tmp_path)
    assert log.seconds == pytest.approx(60 + 90)
    assert log.curve("fid") == [(10, 30.0, 90.0), (20, 60.0 + 60.0, 80.5),
                                (30, 60.0 + 90.0, 70.5)]


def test_scalars_keep_every_value_and_texts_the_latest(tmp_path, monkeypatch):
    write_sessions(tmp_path, monkeypatch)
    log = read_run(tmp_path)
    assert [(step, value) for step, _, value in log.scalars("fid")] == [
        (10, 90.0), (20, 80.0), (20, 80.5), (30, 70.5)]
    assert log.scalars("fid")[0][1] == pytest.approx(1030.0)  # wall time as written
    assert log.last("fid") == 70.5 and log.last("kimg") is None
    assert log.tags() == ["fid"]
    assert log.text("fid/protocol") == "protocol of session 5000"
    assert log.text("nothing") is None


def test_a_folder_without_a_log_is_an_empty_log(tmp_path):
    log = read_run(tmp_path)
    assert log.sessions == () and log.seconds == 0 and log.scalars("fid") == []
    assert log.curve("fid") == [] and log.text("fid/protocol") is None
