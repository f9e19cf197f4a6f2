"""sensor_msgs/Image and CompressedImage to and from numpy, in the manner of cv_bridge: colour
and depth encodings, the size checked from the header before any pixel is decoded (a few
bytes of PNG can declare gigabytes).

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike. Builders import the rclpy message classes lazily, so this module imports without
ROS. Readers raise ``ValueError`` saying what is wrong with the input; the nodes log it and
drop the frame.
"""

from __future__ import annotations

import array

import numpy as np

#: encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3", "8UC1", "mono16")
#: Largest image (pixels) decoded by default: an 8K camera is 33 M pixels; a header declaring
#: more is refused before any pixel is decoded (a few bytes of PNG can declare gigabytes).
MAX_IMAGE_PIXELS = 40_000_000


def check_image_size(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raise ValueError for an image that declares more than ``max_pixels`` pixels."""
    if width * height > max_pixels:
        raise ValueError(
            f"image declares {width}x{height} = {width * height} pixels, more than "
            f"max_image_pixels = {max_pixels}; not decoded"
        )


DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def message_buffer(data) -> np.ndarray:
    """The bytes of a ``uint8[]`` field as a flat uint8 array, without copying.

    rclpy gives ``array.array('B')``, rosbags a numpy array, hand-built messages bytes or lists.
    """
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def image_to_array(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """Decode a sensor_msgs/Image into an array ``(H, W)`` or ``(H, W, C)`` of its own dtype.

    Returns ``(array, encoding)``. Rows padded beyond ``width * pixel size`` (``step`` larger) are
    cropped. Raises ValueError for unsupported encodings, empty or oversized images
    (``check_image_size``), and data whose length disagrees with ``step * height``.
    """
    encoding = str(msg.encoding)
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(
            f"unsupported image encoding '{encoding}' (supported: {', '.join(IMAGE_ENCODINGS)})"
        )
    dtype, channels = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"empty image: {width}x{height} pixels")
    check_image_size(width, height, max_pixels)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(
            f"step {step} is smaller than width x pixel size = {width} x "
            f"{channels * dtype.itemsize} = {row_bytes} bytes"
        )
    data = message_buffer(msg.data)
    if data.size != step * height:
        raise ValueError(
            f"data length {data.size} disagrees with step x height = {step} x {height} = "
            f"{step * height} bytes"
        )
    rows = data.reshape(height, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype)
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != (np.little_endian is False):
        pixels = pixels.byteswap()
    if channels == 1:
        return pixels.reshape(height, width), encoding
    return pixels.reshape(height, width, channels), encoding


def image_to_rgb(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a colour image message into ``(H, W, 3)`` uint8 RGB, whatever its colour encoding."""
    pixels, encoding = image_to_array(msg, max_pixels)
    if encoding not in COLOR_ENCODINGS:
        raise ValueError(
            f"image encoding '{encoding}' is not a colour encoding "
            f"(supported: {', '.join(COLOR_ENCODINGS)})"
        )
    if encoding == "mono16":
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if encoding in ("bgr8", "bgra8", "8UC3"):  # 8UC3 follows OpenCV's BGR order
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def compressed_to_rgb(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG, as image_transport's ``compressed``
    plugin publishes) into ``(H, W, 3)`` uint8 RGB. The size its header declares is checked
    (``check_image_size``) before any pixel is decoded."""
    import io

    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    data = message_buffer(msg.data)
    if data.size == 0:
        raise ValueError(f"empty compressed image (format '{msg.format}')")
    try:
        with PILImage.open(io.BytesIO(data.tobytes())) as image:  # reads the header only
            if image.format not in ("JPEG", "PNG"):
                raise ValueError(f"compressed image in {image.format} (supported: JPEG, PNG)")
            check_image_size(image.width, image.height, max_pixels)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, PILImage.DecompressionBombError) as error:
        raise ValueError(
            f"cannot decode compressed image (format '{msg.format}'): {error}"
        ) from error


def rgb_to_compressed_msg(rgb: np.ndarray, stamp, frame_id: str, image_format: str = "jpeg"):
    """Build a sensor_msgs/CompressedImage (``jpeg`` or ``png``) from ``(H, W, 3)`` uint8 RGB."""
    import io

    from PIL import Image as PILImage
    from sensor_msgs.msg import CompressedImage

    if image_format not in ("jpeg", "png"):
        raise ValueError(f"image_format: 'jpeg' or 'png', got {image_format!r}")
    buffer = io.BytesIO()
    PILImage.fromarray(np.asarray(rgb, np.uint8)).save(buffer, format=image_format.upper())
    msg = CompressedImage()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.format = f"rgb8; {image_format} compressed rgb8"
    msg.data = array.array("B", buffer.getvalue())
    return msg


def image_to_depth(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a depth image into ``(H, W)`` float32 metres, 0 where invalid.

    16UC1/mono16 are millimetres (REP 118); 32FC1 is metres, with NaN and inf marking no return.
    """
    pixels, encoding = image_to_array(msg, max_pixels)
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(
            f"image encoding '{encoding}' is not a depth encoding "
            f"(supported: {', '.join(DEPTH_ENCODINGS)})"
        )
    if encoding == "32FC1":
        depth = pixels.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth < 0)] = 0.0
        return depth
    return pixels.astype(np.float32) * np.float32(0.001)


def rgb_to_image_msg(rgb: np.ndarray, stamp, frame_id: str, encoding: str = "rgb8"):
    """Build a sensor_msgs/Image from ``(H, W, 3)`` uint8 RGB (``encoding`` rgb8 or bgr8), or from a
    2D array with any single-channel encoding of ``IMAGE_ENCODINGS``."""
    from sensor_msgs.msg import Image

    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding '{encoding}'")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    pixels = np.asarray(rgb)
    if encoding in ("bgr8", "bgra8"):
        pixels = pixels[:, :, ::-1]
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels > 1 and pixels.shape[2] != channels):
        raise ValueError(f"array of shape {pixels.shape} does not fit encoding '{encoding}'")
    pixels = np.ascontiguousarray(pixels, dtype=dtype)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0 if np.little_endian else 1
    msg.step = int(pixels.shape[1] * channels * dtype.itemsize)
    msg.data = array.array("B", pixels.tobytes())
    return msg
