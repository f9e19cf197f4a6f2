"""Binary PLY files for meshes and point clouds with extra per-vertex properties (label,
confidence), written atomically so a crash or a full disk never leaves a half-written file where
the user's last good one was."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recon_ros.core.atomic_io import atomic_write_bytes

_PLY_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.uint8): "uchar",
    np.dtype(np.int8): "char",
    np.dtype(np.uint16): "ushort",
    np.dtype(np.int16): "short",
    np.dtype(np.uint32): "uint",
    np.dtype(np.int32): "int",
}
_NUMPY_TYPES = {name: dtype for dtype, name in _PLY_TYPES.items()}
_NUMPY_TYPES.update(
    {"float32": np.dtype(np.float32), "uint8": np.dtype(np.uint8), "int32": np.dtype(np.int32)}
)


def write_ply(
    path: str | os.PathLike,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    **vertex_properties: np.ndarray,
) -> Path:
    """Write a binary little-endian PLY: vertices ``(N, 3)``, optional faces ``(M, 3)``, colours
    ``(N, 3)`` uint8 and any further per-vertex arrays ``(N,)`` (e.g. ``label``, ``confidence``)."""
    vertices = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    n = len(vertices)
    fields = [("x", np.float32), ("y", np.float32), ("z", np.float32)]
    columns = {"x": vertices[:, 0], "y": vertices[:, 1], "z": vertices[:, 2]}
    if colors is not None:
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        if len(colors) != n:
            raise ValueError(f"{len(colors)} colours for {n} vertices")
        for i, name in enumerate(("red", "green", "blue")):
            fields.append((name, np.uint8))
            columns[name] = colors[:, i]
    for name, given in vertex_properties.items():
        values = np.asarray(given)
        if values.shape != (n,):
            raise ValueError(f"property '{name}' has shape {values.shape}, expected ({n},)")
        if values.dtype not in _PLY_TYPES:
            raise ValueError(f"property '{name}' has dtype {values.dtype} with no PLY type")
        fields.append((name, values.dtype.newbyteorder("<")))
        columns[name] = values
    vertex_table = np.zeros(n, dtype=[(name, np.dtype(t).newbyteorder("<")) for name, t in fields])
    for name, values in columns.items():
        vertex_table[name] = values
    header = ["ply", "format binary_little_endian 1.0", "comment written by recon_ros"]
    header.append(f"element vertex {n}")
    header += [f"property {_PLY_TYPES[np.dtype(t).newbyteorder('=')]} {name}" for name, t in fields]
    body = [vertex_table.tobytes()]
    if faces is not None:
        faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        if faces.size and (faces.min() < 0 or faces.max() >= n):
            raise ValueError("faces index vertices that do not exist")
        face_table = np.zeros(len(faces), dtype=[("count", "u1"), ("index", "<i4", (3,))])
        face_table["count"] = 3
        face_table["index"] = faces
        header.append(f"element face {len(faces)}")
        header.append("property list uchar int vertex_indices")
        body.append(face_table.tobytes())
    header.append("end_header")
    return atomic_write_bytes(path, ("\n".join(header) + "\n").encode("ascii") + b"".join(body))


def read_ply(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a binary little-endian PLY as written by ``write_ply`` (triangle faces): a dict with
    ``vertices`` (N, 3), ``faces`` (M, 3) if any, ``colors`` (N, 3) if any, and the other
    per-vertex properties by name."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    if lines[0] != "ply" or "binary_little_endian" not in lines[1]:
        raise ValueError(f"{path}: not a binary little-endian PLY")
    elements: list[tuple[str, int, list]] = []
    for line in lines:
        words = line.split()
        if words[0] == "element":
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property":
            elements[-1][2].append(words[1:])
    out: dict[str, np.ndarray] = {}
    offset = end
    for name, count, properties in elements:
        if name == "vertex":
            dtype = np.dtype([(p[1], _NUMPY_TYPES[p[0]].newbyteorder("<")) for p in properties])
            table = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
            offset += dtype.itemsize * count
            out["vertices"] = np.stack([table["x"], table["y"], table["z"]], axis=1)
            if "red" in dtype.names:
                out["colors"] = np.stack([table["red"], table["green"], table["blue"]], axis=1)
            for field in dtype.names:
                if field not in ("x", "y", "z", "red", "green", "blue"):
                    out[field] = table[field].copy()
        elif name == "face":
            if properties != [["list", "uchar", "int", "vertex_indices"]]:
                raise ValueError(f"{path}: unsupported face layout {properties}")
            dtype = np.dtype([("count", "u1"), ("index", "<i4", (3,))])
            table = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
            if count and np.any(table["count"] != 3):
                raise ValueError(f"{path}: only triangles are supported")
            offset += dtype.itemsize * count
            out["faces"] = table["index"].astype(np.int64)
        else:
            raise ValueError(f"{path}: unexpected element '{name}'")
    return out
