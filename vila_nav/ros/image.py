"""sensor_msgs Image / CompressedImage <-> H x W x 3 uint8 RGB arrays, without cv_bridge.

cv_bridge is not on PyPI and drags in a C++ build; numpy and OpenCV cover what the model needs.
The functions read the message fields by name (height, width, encoding, step, is_bigendian, data;
format for CompressedImage), so they need no rclpy import and are tested on plain objects too.

Supported raw encodings: rgb8, bgr8, rgba8, bgra8, mono8 and their 16-bit forms (rgb16, bgr16,
rgba16, bgra16, mono16, scaled to 8 bits by >> 8, honouring is_bigendian), plus the OpenCV
aliases 8UC1 (mono) and 8UC3 (assumed bgr, as cv_bridge does). Rows may be padded (step > width
* pixel size). Anything else raises ImageError with the reason, never a crash deeper down.
"""
from __future__ import annotations

import numpy as np

# encoding -> (channels, bytes per channel, channel order of the source)
_ENCODINGS: dict[str, tuple[int, int, str]] = {
    "rgb8": (3, 1, "rgb"),
    "bgr8": (3, 1, "bgr"),
    "rgba8": (4, 1, "rgba"),
    "bgra8": (4, 1, "bgra"),
    "mono8": (1, 1, "mono"),
    "8uc1": (1, 1, "mono"),
    "8uc3": (3, 1, "bgr"),
    "rgb16": (3, 2, "rgb"),
    "bgr16": (3, 2, "bgr"),
    "rgba16": (4, 2, "rgba"),
    "bgra16": (4, 2, "bgra"),
    "mono16": (1, 2, "mono"),
    "16uc1": (1, 2, "mono"),
}

SUPPORTED_ENCODINGS = tuple(sorted(_ENCODINGS))


class ImageError(ValueError):
    """An image message that cannot be turned into an RGB frame (the reason is the message)."""


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (height, width, 3) uint8 RGB array (a fresh copy, C-contiguous)."""
    enc = str(msg.encoding).strip().lower()
    if enc not in _ENCODINGS:
        raise ImageError(f"unsupported image encoding '{msg.encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    channels, depth, order = _ENCODINGS[enc]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image {width}x{height}")
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageError(f"step {step} < width * pixel size = {row_bytes} ({enc} {width}x{height})")
    data = np.frombuffer(msg.data, dtype=np.uint8)  # array.array / bytes / list -> flat bytes view
    if data.size < step * (height - 1) + row_bytes:
        raise ImageError(f"image data has {data.size} bytes, needs {step * height} ({enc} {width}x{height}, step {step})")
    if data.size >= step * height:
        rows = data[: step * height].reshape(height, step)
    else:  # the last row's padding may be omitted by some drivers
        rows = np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes), strides=(step, 1))
    pixels = rows[:, :row_bytes]  # drop the row padding: (H, W * C * depth)
    if depth == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        pixels = (np.ascontiguousarray(pixels).view(dtype) >> 8).astype(np.uint8)  # 16 -> 8 bits
    pixels = pixels.reshape(height, width, channels)
    if order == "mono":
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=2))
    if order in ("bgr", "bgra"):
        pixels = pixels[:, :, 2::-1]  # B, G, R -> R, G, B (alpha dropped)
    else:
        pixels = pixels[:, :, :3]
    return np.ascontiguousarray(pixels)


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png, as image_transport's compressed plugin sends) -> RGB."""
    import cv2

    fmt = str(getattr(msg, "format", "")).lower()
    if "compresseddepth" in fmt:
        raise ImageError(f"compressed depth images are not camera frames (format '{msg.format}')")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageError("empty compressed image")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # always 3-channel BGR, 8 bit
    if bgr is None:
        raise ImageError(f"OpenCV could not decode the compressed image (format '{msg.format}', {buf.size} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def to_rgb(msg) -> np.ndarray:
    """Either message type -> RGB array (CompressedImage is recognised by its `format` field)."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_to_rgb(msg)
    return image_to_rgb(msg)


def fill_image(msg, rgb: np.ndarray):
    """Write an (H, W, 3) uint8 RGB array into a sensor_msgs/Image (rgb8, unpadded); returns msg."""
    import array

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1]) * 3
    msg.data = array.array("B", np.ascontiguousarray(rgb).tobytes())  # array('B') is the fast path
    return msg


def fill_compressed(msg, rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90):
    """Encode an RGB array into a sensor_msgs/CompressedImage (jpeg or png); returns msg."""
    import array

    import cv2

    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(fmt.lower())
    if ext is None:
        raise ImageError(f"unsupported compressed format '{fmt}' (jpeg, png)")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.asarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageError(f"OpenCV could not encode the image as {fmt}")
    msg.format = "jpeg" if ext == ".jpg" else "png"
    msg.data = array.array("B", buf.tobytes())
    return msg
