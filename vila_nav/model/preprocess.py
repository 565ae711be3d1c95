"""Image preprocessing of NaVILA's "resize" mode: squash, bicubic, rescale, normalise.

VILA resizes each RGB frame to the tower's size with PIL's `Image.resize` (default filter:
bicubic, which is antialiased when shrinking) and then runs SiglipImageProcessor, whose own
resize is a no-op at that size: values = (uint8 * rescale_factor as float32 - mean) / std, with
mean = std = 0.5 for SigLIP (values in [-1, 1]). We reproduce that with Pillow directly (no
torchvision, no transformers image processor): the same bytes give the same floats. OpenCV's
INTER_CUBIC does not antialias and would give different pixels when shrinking.
Size, mean, std and rescale factor are read from `vision_tower/preprocessor_config.json` when
present, else from the tower's config (image_size) with SigLIP's 0.5/0.5.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

PREPROCESSOR_FILE = "preprocessor_config.json"


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow ships with matplotlib/imageio
        raise ImportError("vila_nav.model needs Pillow for NaVILA's bicubic resize: pip install pillow") from exc
    return Image


@dataclasses.dataclass(frozen=True)
class ImageProcessor:
    """Frame (H x W x 3 uint8 RGB) -> pixel values (3 x height x width float32)."""

    height: int
    width: int
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1.0 / 255.0
    do_rescale: bool = True
    do_normalize: bool = True

    def __post_init__(self):
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if len(self.image_mean) != 3 or len(self.image_std) != 3:
            raise ValueError("image_mean and image_std need 3 values (RGB)")
        if any(s == 0 for s in self.image_std):
            raise ValueError("image_std must not contain 0")

    @classmethod
    def from_folder(cls, folder: str | Path, image_size: int) -> ImageProcessor:
        """Read `folder/preprocessor_config.json` if present, else SigLIP defaults at image_size."""
        path = Path(folder) / PREPROCESSOR_FILE
        if not path.is_file():
            # NaVILA's released layout has this file; SigLIP's defaults are its values.
            logging.getLogger(__name__).warning(
                "%s not found: using SigLIP's defaults (%dx%d, mean = std = 0.5)", path, image_size, image_size)
            return cls(height=int(image_size), width=int(image_size))
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        size = raw.get("size", {"height": image_size, "width": image_size})
        if isinstance(size, int):
            size = {"height": size, "width": size}
        if not isinstance(size, dict) or "height" not in size or "width" not in size:
            raise ValueError(f"{path}: 'size' must be {{'height': H, 'width': W}}, got {size!r}")
        if (size["height"], size["width"]) != (image_size, image_size):
            raise ValueError(f"{path}: size {size['height']}x{size['width']} does not match the vision tower's "
                             f"image_size {image_size}")
        try:
            return cls(
                height=int(size["height"]),
                width=int(size["width"]),
                image_mean=tuple(float(v) for v in raw.get("image_mean", (0.5, 0.5, 0.5))),
                image_std=tuple(float(v) for v in raw.get("image_std", (0.5, 0.5, 0.5))),
                rescale_factor=float(raw.get("rescale_factor", 1.0 / 255.0)),
                do_rescale=bool(raw.get("do_rescale", True)),
                do_normalize=bool(raw.get("do_normalize", True)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write preprocessor_config.json in SiglipImageProcessor's format."""
        path = Path(folder) / PREPROCESSOR_FILE
        raw = {
            "do_normalize": self.do_normalize,
            "do_rescale": self.do_rescale,
            "do_resize": True,
            "image_mean": list(self.image_mean),
            "image_processor_type": "SiglipImageProcessor",
            "image_std": list(self.image_std),
            "resample": 3,  # PIL bicubic
            "rescale_factor": self.rescale_factor,
            "size": {"height": self.height, "width": self.width},
        }
        path.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
        return path

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """One frame (H x W x 3 uint8 RGB) -> (3, height, width) float32."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be an H x W x 3 uint8 RGB array, got shape {frame.shape} dtype {frame.dtype}")
        if frame.shape[:2] != (self.height, self.width):
            Image = _pil()
            img = Image.fromarray(np.ascontiguousarray(frame))  # H x W x 3 uint8 -> mode RGB
            frame = np.asarray(img.resize((self.width, self.height), resample=Image.Resampling.BICUBIC))
        # Same arithmetic as transformers' rescale (float64 product cast to float32) and normalize
        # (float32), so values match NaVILA's processor bit for bit.
        x = (frame * self.rescale_factor).astype(np.float32) if self.do_rescale else frame.astype(np.float32)
        if self.do_normalize:
            x = (x - np.asarray(self.image_mean, dtype=np.float32)) / np.asarray(self.image_std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def batch(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Frames -> (B, 3, height, width) float32."""
        return np.stack([self(f) for f in frames])
