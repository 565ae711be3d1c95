"""Per-episode MP4 videos of the agent's RGB observations (OpenCV VideoWriter, mp4v)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def write_video(path: Path, frames: Sequence[np.ndarray], captions: Sequence[str] = (), fps: float = 5.0) -> Path:
    """Write `frames` (H x W x 3 uint8 RGB, all the same size) as an MP4 (mp4v codec).

    captions: optional text per frame (e.g. the primitive taken), drawn in the top-left corner.
    Raises RuntimeError if OpenCV cannot open a writer for the path.
    """
    import cv2

    if not frames:
        raise ValueError(f"no frames to write to {path}")
    h, w = frames[0].shape[:2]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open an mp4v video writer for {path}")
    scale = max(h / 480.0, 0.35)  # font scale that stays readable on 224 px frames
    try:
        for i, frame in enumerate(frames):
            if frame.shape[:2] != (h, w):
                raise ValueError(f"frame {i} is {frame.shape[:2]}, expected {(h, w)} like frame 0")
            bgr = cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2BGR)
            if i < len(captions) and captions[i]:
                org = (4, int(18 * scale / 0.5))
                cv2.putText(bgr, captions[i], org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(bgr, captions[i], org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(bgr)
    finally:
        writer.release()
    return path
