"""Image conversion without cv_bridge, on real sensor_msgs messages (the ros extra's wheels)."""
from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rclpy")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from vila_nav.ros.image import ImageError, compressed_to_rgb, fill_compressed, fill_image, image_to_rgb, to_rgb  # noqa: E402

pytestmark = pytest.mark.ros

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)  # odd sizes on purpose


def raw(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """An Image message holding `pixels` (H, W, C) with `pad` junk bytes at the end of each row."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).view(np.uint8) if pixels.dtype != np.uint8 else pixels.reshape(h, -1)
    junk = np.full((h, pad), 0xAB, dtype=np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=data.shape[1])
    msg.data = array.array("B", data.tobytes())
    return msg


@pytest.mark.parametrize("pad", [0, 3, 64])
def test_eight_bit_encodings_with_row_padding(pad):
    alpha = RNG.integers(0, 256, size=(5, 7, 1), dtype=np.uint8)
    cases = {
        "rgb8": RGB,
        "bgr8": RGB[:, :, ::-1],
        "rgba8": np.concatenate([RGB, alpha], axis=2),
        "bgra8": np.concatenate([RGB[:, :, ::-1], alpha], axis=2),
    }
    for enc, pixels in cases.items():
        out = image_to_rgb(raw(np.ascontiguousarray(pixels), enc, pad))
        assert out.dtype == np.uint8 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, RGB, err_msg=enc)
    gray = RGB[:, :, 0:1].copy()
    np.testing.assert_array_equal(image_to_rgb(raw(gray, "mono8", pad)), np.repeat(gray, 3, axis=2))


@pytest.mark.parametrize("bigendian", [False, True])
def test_sixteen_bit_encodings_honour_endianness(bigendian):
    wide = RGB.astype(np.uint16) * 257  # 8-bit value v -> 16-bit v*257, >> 8 gives v back
    pixels = wide.astype(">u2" if bigendian else "<u2")
    out = image_to_rgb(raw(pixels, "rgb16", pad=2, bigendian=bigendian))
    np.testing.assert_array_equal(out, RGB)
    mono = pixels[:, :, :1].copy()
    np.testing.assert_array_equal(image_to_rgb(raw(mono, "mono16", bigendian=bigendian)), np.repeat(RGB[:, :, :1], 3, 2))


def test_fill_image_round_trip_and_compressed():
    big = RNG.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_rgb(fill_image(Image(), big)), big)
    png = fill_compressed(CompressedImage(), big, "png")
    np.testing.assert_array_equal(compressed_to_rgb(png), big)  # png is lossless
    smooth = cv2.GaussianBlur(big, (9, 9), 3)
    jpeg = fill_compressed(CompressedImage(), smooth, "jpeg", quality=95)
    assert np.abs(compressed_to_rgb(jpeg).astype(int) - smooth).mean() < 4
    assert to_rgb(png).shape == (48, 64, 3)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda m: setattr(m, "encoding", "32FC1"), "unsupported image encoding"),
        (lambda m: setattr(m, "encoding", "bayer_rggb8"), "unsupported image encoding"),
        (lambda m: setattr(m, "step", 5), "step"),
        (lambda m: setattr(m, "data", array.array("B", b"\x00" * 10)), "bytes"),
        (lambda m: setattr(m, "width", 0), "empty"),
    ],
)
def test_bad_images_raise_image_error(mutate, match):
    msg = raw(RGB, "rgb8")
    mutate(msg)
    with pytest.raises(ImageError, match=match):
        image_to_rgb(msg)


def test_bad_compressed_images_raise_image_error():
    with pytest.raises(ImageError, match="decode"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=array.array("B", b"not a jpeg at all")))
    with pytest.raises(ImageError, match="empty"):
        compressed_to_rgb(CompressedImage(format="jpeg"))
    with pytest.raises(ImageError, match="depth"):
        compressed_to_rgb(CompressedImage(format="16UC1; compressedDepth", data=array.array("B", b"x")))


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(0, 6), w=st.integers(0, 6), step=st.integers(0, 40),
    enc=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "16UC1", "weird"]),
    data=st.binary(max_size=200), big=st.booleans(),
)
def test_any_message_converts_or_raises_image_error(h, w, step, enc, data, big):
    msg = Image(height=h, width=w, step=step, encoding=enc, is_bigendian=int(big))
    msg.data = array.array("B", data)
    try:
        out = image_to_rgb(msg)
    except ImageError:
        return
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
