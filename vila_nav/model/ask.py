"""`vila-nav ask`: one navigation decision from image files or a video, printed as text + action.

    vila-nav ask --instruction "Walk to the sofa and stop." img0.png img1.png ... current.png
    vila-nav ask --model /data/navila-llama3-8b-8f --instruction "..." walk.mp4 device=cuda quantization=int4

Images are the episode's frames, oldest first, the last one being the current view; a video is
an episode whose last frame is the current view. Either way the model sees NaVILA's sample of
num_video_frames frames (vila_nav.frames.sample_indices: black padding for short episodes, the
first frame always in, the current frame last). `--model` (default: the shipped model) is
shorthand for the override `path=...`; other options are hydra overrides of config/model.yaml
(device, dtype, quantization, quantize_vision, num_threads, max_new_tokens...).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def read_image(path: Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB (clear error if unreadable)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_video_sampled(path: Path, num_frames: int) -> tuple[list[np.ndarray], int]:
    """NaVILA's sample of a video's frames (last frame = current); returns (frames, video length)."""
    import cv2

    from vila_nav.frames import sample_indices

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open this video")
    n = 0
    while cap.grab():  # count decodable frames (the container's frame count is not reliable)
        n += 1
    cap.release()
    if n == 0:
        raise ValueError(f"{path}: the video has no decodable frames")
    wanted = sample_indices(n, num_frames)
    needed = {i for i in wanted if i is not None}
    picked: dict[int, np.ndarray] = {}
    cap = cv2.VideoCapture(str(path))
    for i in range(max(needed) + 1):
        ok, bgr = cap.read()
        if not ok:
            raise ValueError(f"{path}: frame {i} could not be decoded")
        if i in needed:
            picked[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    cap.release()
    black = np.zeros_like(picked[max(needed)])
    return [picked[i] if i is not None else black for i in wanted], n


def sample_images(images: list[np.ndarray], num_frames: int) -> list[np.ndarray]:
    """NaVILA's sample over an episode given as images (oldest first, last = current)."""
    from vila_nav.frames import sample_indices

    black = np.zeros_like(images[-1])
    return [images[i] if i is not None else black for i in sample_indices(len(images), num_frames)]


def _split(rest: list[str]) -> tuple[list[Path], list[str]]:
    inputs, overrides = [], []
    for arg in rest:
        if "=" in arg and not Path(arg).exists():
            overrides.append(arg)
        else:
            inputs.append(Path(arg))
    return inputs, overrides


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vila-nav ask",
        description="One NaVILA decision from image files or a video; prints the model's text and the parsed action.",
        epilog="Other arguments of the form key=value override config/model.yaml (e.g. quantization=int8 device=cuda).",
    )
    parser.add_argument("--model", help="checkpoint directory (NaVILA layout); default: the shipped model")
    parser.add_argument("--instruction", required=True, help="the navigation instruction")
    parser.add_argument("inputs", nargs="+", help="image files (oldest first, current last) or one video file, then key=value overrides")
    args = parser.parse_intermixed_args(argv)  # flags may follow the positional inputs

    from vila_nav.config import ConfigError, compose
    from vila_nav.model.checkpoint import CheckpointError, load_from_config
    from vila_nav.model.config import ModelConfig

    paths, overrides = _split(args.inputs)
    if args.model:
        overrides.append(f"path={args.model}")
    if not paths:
        parser.error("give at least one image file or a video file")
    try:
        cfg = compose(ModelConfig, "model", overrides)
        for p in paths:
            if not p.is_file():
                raise ValueError(f"{p}: no such file")
        videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
        if videos and len(paths) > 1:
            raise ValueError("give either image files or exactly one video file")
        model = load_from_config(cfg)
        k = model.num_frames
        if videos:
            frames, n = read_video_sampled(videos[0], k)
            source = f"{videos[0]} ({n} frames)"
        else:
            frames = sample_images([read_image(p) for p in paths], k)
            source = f"{len(paths)} image(s)"
        text = model.generate(frames, args.instruction)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"vila-nav ask: {exc}")
        return 2

    from vila_nav.actions import parse_action

    action = parse_action(text)
    s = model.last_stats
    print(f"model:       {cfg.path or 'shipped model'} ({cfg.device}, {model.dtype}, quantization={model.quantization})")
    print(f"frames:      {source} -> {k} sampled (current last)")
    print(f"instruction: {args.instruction}")
    print(f"text:        {text!r}")
    print(f"action:      {action if action is not None else 'None (unparseable)'}")
    print(
        f"latency:     {s['latency_s'] * 1000:.1f} ms ({s['vision_calls']} tower calls, "
        f"{s['prompt_tokens']} prompt tokens, {s['new_tokens']} new tokens)"
    )
    return 0
