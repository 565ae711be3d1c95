"""`vila-nav ask` on image files and a video, with a tiny checkpoint; and its clear errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vila_nav.model.ask import main, read_video_sampled, sample_images


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return tiny_checkpoint()


def _images(folder, n):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"f{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (36, 48, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def test_ask_images(ckpt, tmp_path, capsys):
    paths = _images(tmp_path, 3)
    rc = main(["--model", str(ckpt), "--instruction", "Go to the door.", *map(str, paths)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "text:" in out and "action:" in out
    assert "3 image(s) -> 8 sampled" in out
    assert "4 tower calls" in out  # black padding + 3 distinct images


def test_ask_video_samples_like_navila(ckpt, tmp_path, capsys):
    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 36))
    for i in range(20):
        writer.write(np.full((36, 48, 3), 10 * i, np.uint8))  # frame i has value 10*i
    writer.release()
    frames, n = read_video_sampled(video, 8)
    assert n == 20 and len(frames) == 8
    # NaVILA: history indices floor(k * 19 / 7) for k = 0..6, then the last frame.
    want = [0, 2, 5, 8, 10, 13, 16, 19]
    assert [int(round(f.mean() / 10)) for f in frames] == want
    assert main(["--model", str(ckpt), "--instruction", "Go.", str(video), "quantization=int8"]) == 0
    assert "/walk.avi (20 frames) -> 8 sampled" in capsys.readouterr().out


def test_sample_images_pads_with_black():
    imgs = [np.full((2, 2, 3), 7, np.uint8)] * 2
    out = sample_images(imgs, 8)
    assert len(out) == 8 and out[0].max() == 0 and out[-1].max() == 7


@pytest.mark.parametrize(
    "args,match",
    [
        (["--model", "a-org/navila-8b"], "model-hub id"),
        (["quantization=int3"], "quantization must be one of"),
        (["--model", "/nonexistent/dir"], "does not exist"),
    ],
)
def test_ask_errors(ckpt, tmp_path, capsys, args, match):
    paths = _images(tmp_path, 1)
    argv = ["--instruction", "Go.", str(paths[0])] + (args if args[0] == "--model" else ["--model", str(ckpt), *args])
    assert main(argv) == 2
    assert match in capsys.readouterr().out


def test_ask_rejects_unreadable_image(ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["--model", str(ckpt), "--instruction", "Go.", str(bad)]) == 2
    assert "not a readable image" in capsys.readouterr().out
