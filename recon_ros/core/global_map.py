"""The persistent global map: a sparse set of chunks holding the 3D network's *outputs* for every
place the window has covered.

A chunk is ``chunk_size^3`` voxels keyed by its integer index ``(cx, cy, cz)``; global voxel
``g`` (centre ``g * voxel_size``) lies in chunk ``floor(g / chunk_size)``. Per voxel it stores
the TSDF (float16), an observation weight (uint16, frames), the semantic label (uint8,
``IGNORE_LABEL`` when unknown) with its confidence (float16) and the mean image colour (uint8
RGB): 10 bytes per voxel, 40 KiB per 16^3 chunk.

Merging a window prediction, per voxel with new observation weight ``w > 0`` (frames integrated
since the previous merge) and map weight ``W``:

- TSDF and colour: weighted average ``(W x + w x_new) / (W + w)``; then ``W = min(W + w, cap)``.
  The cap keeps the map able to follow later, better-informed predictions.
- Label: a weighted vote. Evidence is confidence x weight on each side. Equal labels average
  their confidences; different labels keep the side with more evidence, with confidence
  ``(e_win - e_lose) / (W + w)``, so a contested label is a weak one and can flip later.

Voxels the window did not observe (``w == 0``) are untouched. When the map holds more than
``max_chunks`` chunks, those farthest from a given position are evicted (and counted).

Meshes are cached per chunk; a chunk is remeshed only when it or one of the neighbours of its
one-voxel apron (+x, +y, +z sides) changed, so chunk seams close without remeshing everything.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.meshing import SATURATION, Mesh, concatenate_meshes, extract_mesh
from recon_ros.core.occupancy import OccupancySlice, occupancy_slice

ChunkKey = tuple[int, int, int]
#: Neighbours whose first voxel layer forms a chunk's apron.
_APRON_OFFSETS = [d for d in product((0, 1), repeat=3) if d != (0, 0, 0)]
MAX_WEIGHT_CAP = np.iinfo(np.uint16).max


@dataclass
class MapChunk:
    """Arrays of one chunk, all (S, S, S) except rgb (S, S, S, 3)."""

    tsdf: np.ndarray
    weight: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    rgb: np.ndarray
    version: int = 0

    @classmethod
    def empty(cls, size: int) -> "MapChunk":
        shape = (size, size, size)
        return cls(
            tsdf=np.ones(shape, np.float16),
            weight=np.zeros(shape, np.uint16),
            label=np.full(shape, IGNORE_LABEL, np.uint8),
            confidence=np.zeros(shape, np.float16),
            rgb=np.zeros((*shape, 3), np.uint8),
        )

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes for a in (self.tsdf, self.weight, self.label, self.confidence, self.rgb)
        )


@dataclass(frozen=True)
class MergeResult:
    chunks_updated: int
    chunks_created: int
    voxels_updated: int
    chunks_evicted: int


@dataclass
class _MeshCacheEntry:
    stamp: tuple
    mesh: Mesh = field(default_factory=Mesh)


class GlobalMap:
    """Sparse chunked map of TSDF, weight, label, confidence and colour.

    Args:
        voxel_size: metres.
        chunk_size: voxels per chunk edge.
        max_chunks: memory cap; beyond it the farthest chunks are evicted.
        weight_cap: largest stored observation weight (<= 65535).
        saturation: |TSDF| treated as outside the truncation band when meshing.

    All public methods are thread-safe; ``mesh`` runs marching cubes outside the lock.
    """

    def __init__(
        self,
        voxel_size: float,
        chunk_size: int = 16,
        max_chunks: int = 4096,
        weight_cap: int = 64,
        saturation: float = SATURATION,
        min_mesh_weight: int = 1,
    ) -> None:
        if not np.isfinite(voxel_size) or voxel_size <= 0:
            raise ValueError(f"voxel_size: must be positive, got {voxel_size}")
        if int(chunk_size) != chunk_size or chunk_size < 2:
            raise ValueError(f"chunk_size: must be an integer >= 2, got {chunk_size}")
        if int(max_chunks) != max_chunks or max_chunks < 1:
            raise ValueError(f"max_chunks: must be a positive integer, got {max_chunks}")
        if not 1 <= weight_cap <= MAX_WEIGHT_CAP:
            raise ValueError(f"weight_cap: must be in [1, {MAX_WEIGHT_CAP}], got {weight_cap}")
        self.voxel_size = float(voxel_size)
        self.chunk_size = int(chunk_size)
        self.max_chunks = int(max_chunks)
        self.weight_cap = int(weight_cap)
        self.saturation = float(saturation)
        if int(min_mesh_weight) != min_mesh_weight or min_mesh_weight < 1:
            raise ValueError(f"min_mesh_weight: must be an integer >= 1, got {min_mesh_weight}")
        #: Voxels with less observation weight are left out of meshes (single noisy views).
        self.min_mesh_weight = int(min_mesh_weight)
        self.chunks: dict[ChunkKey, MapChunk] = {}
        self.evictions = 0
        self._version_counter = 0
        self._mesh_cache: dict[ChunkKey, _MeshCacheEntry] = {}
        #: Chunks the last ``mesh`` call had to (re)mesh; the others came from the cache.
        self.chunks_remeshed_last_call = 0
        #: Optional ``core.surface_refiner.SurfaceRefiner``: meshes show its refined TSDF and
        #: labels while the chunks keep the fused values.
        self.refiner = None
        self._lock = threading.RLock()

    # --- bookkeeping -------------------------------------------------------------------------

    @property
    def num_chunks(self) -> int:
        return len(self.chunks)

    @property
    def nbytes(self) -> int:
        """Bytes held by chunk arrays (cached meshes not included)."""
        with self._lock:
            return sum(c.nbytes for c in self.chunks.values())

    def _bump(self, chunk: MapChunk) -> None:
        self._version_counter += 1
        chunk.version = self._version_counter

    def chunk_centre(self, key: ChunkKey) -> np.ndarray:
        """(3,) world centre of a chunk's region."""
        return (np.asarray(key) * self.chunk_size + (self.chunk_size - 1) / 2.0) * self.voxel_size

    def origin_to_index(self, origin: Sequence[float], name: str = "window_origin") -> np.ndarray:
        """World position of a voxel centre on the chunk lattice -> (3,) int64 voxel index."""
        origin = np.asarray(origin, dtype=np.float64)
        if origin.shape != (3,) or not np.all(np.isfinite(origin)):
            raise ValueError(f"{name}: expected 3 finite values, got {origin}")
        index = np.rint(origin / self.voxel_size).astype(np.int64)
        if np.abs(index * self.voxel_size - origin).max() > 1e-3 * self.voxel_size:
            raise ValueError(f"{name}: {origin.tolist()} is not a voxel centre of the map grid")
        if np.any(index % self.chunk_size):
            raise ValueError(
                f"{name}: {origin.tolist()} is not on the chunk lattice "
                f"({self.chunk_size * self.voxel_size:g} m)"
            )
        return index

    # --- merging -----------------------------------------------------------------------------

    def merge(
        self,
        window_origin: Sequence[float],
        tsdf: np.ndarray,
        labels: np.ndarray,
        confidence: np.ndarray,
        rgb: np.ndarray,
        weight: np.ndarray,
        keep_near: Sequence[float] | None = None,
        replace: bool = False,
    ) -> MergeResult:
        """Merge a window prediction into the map where ``weight > 0``.

        With ``replace`` the window's values are stored as they are (a fused window that was
        loaded from the map already holds the map's evidence: ``core.tsdf_volume``); ``weight``
        is then the window's total weight where it changed, 0 elsewhere.

        Args:
            window_origin: (3,) world centre of window voxel (0, 0, 0), on the chunk lattice.
            tsdf: (X, Y, Z) float in [-1, 1]; X, Y, Z multiples of ``chunk_size``.
            labels: (X, Y, Z) integer class ids (< 256).
            confidence: (X, Y, Z) float in [0, 1].
            rgb: (X, Y, Z, 3) uint8.
            weight: (X, Y, Z) non-negative observation weight (frames since the last merge).
            keep_near: position the eviction keeps chunks around (default: window centre).
        """
        origin_index = self.origin_to_index(window_origin)
        tsdf = np.asarray(tsdf, dtype=np.float32)
        dims = tsdf.shape
        if tsdf.ndim != 3 or any(d % self.chunk_size for d in dims) or min(dims) == 0:
            raise ValueError(f"tsdf: expected (X, Y, Z) multiples of {self.chunk_size}, got {dims}")
        expected = {"labels": dims, "confidence": dims, "rgb": (*dims, 3), "weight": dims}
        arrays = {"labels": labels, "confidence": confidence, "rgb": rgb, "weight": weight}
        for name, array in arrays.items():
            if np.shape(array) != expected[name]:
                raise ValueError(f"{name}: expected shape {expected[name]}, got {np.shape(array)}")
        weight = np.asarray(weight, dtype=np.float32)
        if not np.all(np.isfinite(weight)) or weight.min() < 0:
            raise ValueError("weight: must be finite and non-negative")
        if not np.all(np.isfinite(tsdf)):
            raise ValueError("tsdf: contains NaN or infinite values")
        labels = np.asarray(labels)
        confidence = np.asarray(confidence, dtype=np.float32)
        rgb = np.asarray(rgb, dtype=np.float32)
        size = self.chunk_size
        chunk_origin = origin_index // size
        updated = created = voxels = 0
        with self._lock:
            for offset in np.ndindex(*(d // size for d in dims)):
                window_slice = tuple(slice(o * size, (o + 1) * size) for o in offset)
                w_new = weight[window_slice]
                observed_new = w_new > 0
                if not observed_new.any():
                    continue
                key = tuple(int(c) for c in chunk_origin + np.asarray(offset))
                chunk = self.chunks.get(key)
                if chunk is None:
                    chunk = self.chunks[key] = MapChunk.empty(size)
                    created += 1
                store = self._replace_chunk if replace else self._merge_chunk
                store(
                    chunk,
                    observed_new,
                    w_new,
                    tsdf[window_slice],
                    labels[window_slice],
                    confidence[window_slice],
                    rgb[window_slice],
                )
                self._bump(chunk)
                updated += 1
                voxels += int(observed_new.sum())
            if keep_near is None:
                keep_near = (origin_index + (np.asarray(dims) - 1) / 2.0) * self.voxel_size
            evicted = self.evict_far_from(keep_near)
        return MergeResult(updated, created, voxels, evicted)

    def _merge_chunk(self, chunk, mask, w_new, tsdf_new, label_new, conf_new, rgb_new) -> None:
        w_map = chunk.weight[mask].astype(np.float32)
        w = w_new[mask]
        total = w_map + w
        tsdf_map = chunk.tsdf[mask].astype(np.float32)
        chunk.tsdf[mask] = ((tsdf_map * w_map + tsdf_new[mask] * w) / total).astype(np.float16)
        rgb_map = chunk.rgb[mask].astype(np.float32)
        rgb = (rgb_map * w_map[:, None] + rgb_new[mask] * w[:, None]) / total[:, None]
        chunk.rgb[mask] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        # Weighted vote between the map's label and the window's.
        label_map = chunk.label[mask]
        label_in = label_new[mask].astype(np.uint8)
        conf_map = chunk.confidence[mask].astype(np.float32)
        conf_in = np.clip(conf_new[mask], 0.0, 1.0)
        evidence_map, evidence_in = conf_map * w_map, conf_in * w
        same = label_map == label_in
        new_wins = evidence_in >= evidence_map
        chunk.label[mask] = np.where(same | new_wins, label_in, label_map)
        margin = np.abs(evidence_in - evidence_map) / total
        agreed = (evidence_map + evidence_in) / total
        chunk.confidence[mask] = np.where(same, agreed, margin).astype(np.float16)
        chunk.weight[mask] = np.minimum(total, self.weight_cap).astype(np.uint16)

    def _replace_chunk(self, chunk, mask, w_new, tsdf_new, label_new, conf_new, rgb_new) -> None:
        chunk.tsdf[mask] = tsdf_new[mask].astype(np.float16)
        chunk.rgb[mask] = np.clip(np.rint(rgb_new[mask]), 0, 255).astype(np.uint8)
        chunk.label[mask] = label_new[mask].astype(np.uint8)
        chunk.confidence[mask] = np.clip(conf_new[mask], 0.0, 1.0).astype(np.float16)
        chunk.weight[mask] = np.clip(np.ceil(w_new[mask]), 1, self.weight_cap).astype(np.uint16)

    def evict_far_from(self, position: Sequence[float]) -> int:
        """Drop the chunks farthest from ``position`` until at most ``max_chunks`` remain;
        returns how many were dropped."""
        with self._lock:
            excess = len(self.chunks) - self.max_chunks
            if excess <= 0:
                return 0
            keys = list(self.chunks)
            centres = (np.asarray(keys) * self.chunk_size + (self.chunk_size - 1) / 2.0) * (
                self.voxel_size
            )
            distance = np.linalg.norm(centres - np.asarray(position, dtype=np.float64), axis=1)
            for i in np.argsort(-distance, kind="stable")[:excess]:
                del self.chunks[keys[i]]
                self._mesh_cache.pop(keys[i], None)
            self.evictions += excess
            return excess

    def clear(self) -> None:
        with self._lock:
            self.chunks.clear()
            self._mesh_cache.clear()
            self.evictions = 0

    # --- reading -----------------------------------------------------------------------------

    def read_region(
        self, origin_index: Sequence[int], dims: Sequence[int]
    ) -> dict[str, np.ndarray]:
        """Dense copy of a box of the map (any alignment): ``tsdf``, ``weight``, ``label``,
        ``confidence`` (X, Y, Z) and ``rgb`` (X, Y, Z, 3); unmapped voxels read as tsdf 1,
        weight 0, label ``IGNORE_LABEL``."""
        origin_index = np.asarray(origin_index, dtype=np.int64)
        dims = tuple(int(d) for d in dims)
        out = {
            "tsdf": np.ones(dims, np.float32),
            "weight": np.zeros(dims, np.uint16),
            "label": np.full(dims, IGNORE_LABEL, np.uint8),
            "confidence": np.zeros(dims, np.float32),
            "rgb": np.zeros((*dims, 3), np.uint8),
        }
        size = self.chunk_size
        first = origin_index // size
        last = (origin_index + np.asarray(dims) - 1) // size
        with self._lock:
            for key in product(
                *(range(int(a), int(b) + 1) for a, b in zip(first, last, strict=True))
            ):
                chunk = self.chunks.get(key)
                if chunk is None:
                    continue
                lo = np.maximum(np.asarray(key) * size, origin_index)
                hi = np.minimum((np.asarray(key) + 1) * size, origin_index + np.asarray(dims))
                src = tuple(
                    slice(a - k * size, b - k * size) for a, b, k in zip(lo, hi, key, strict=True)
                )
                dst = tuple(
                    slice(a - o, b - o) for a, b, o in zip(lo, hi, origin_index, strict=True)
                )
                for name in ("tsdf", "weight", "label", "confidence", "rgb"):
                    out[name][dst] = getattr(chunk, name)[src]
        return out

    def _padded_arrays(self, key: ChunkKey) -> dict[str, np.ndarray]:
        """(S+1)^3 arrays of a chunk plus its one-voxel apron from the +x/+y/+z neighbours."""
        size = self.chunk_size
        return self.read_region(np.asarray(key) * size, (size + 1,) * 3)

    def set_refiner(self, refiner) -> None:
        """Mesh through ``refiner`` (a ``SurfaceRefiner``; None: the fused TSDF as it is). Its
        halo must not exceed a chunk."""
        if refiner is not None and refiner.halo > self.chunk_size:
            raise ValueError(
                f"refiner: halo {refiner.halo} exceeds the chunk size {self.chunk_size}"
            )
        with self._lock:
            self.refiner = refiner
            self._mesh_cache.clear()

    def _mesh_stamp(self, key: ChunkKey) -> tuple:
        # A refined chunk also reads its other neighbours as context, but is remeshed only when
        # it or its apron changes: the refinement's cost follows the changed surface.
        refiner = self.refiner
        neighbours = (
            tuple(k + d for k, d in zip(key, offset, strict=True)) for offset in _APRON_OFFSETS
        )
        return (
            None if refiner is None else refiner.version,
            self.chunks[key].version,
            *(self.chunks[n].version if n in self.chunks else None for n in neighbours),
        )

    def _mesh_arrays(self, key: ChunkKey, refiner) -> dict[str, np.ndarray]:
        """What meshing a chunk reads: its (S+1)^3 arrays, or with a refiner the block with the
        refiner's halo around it."""
        if refiner is None:
            return self._padded_arrays(key)
        size = self.chunk_size
        start = np.asarray(key) * size - refiner.halo
        return self.read_region(start, (refiner.block_edge(size),) * 3)

    def mesh(self) -> Mesh:
        """Mesh of the whole map (colours = image colours; see ``colorize_mesh``), remeshing only
        the chunks whose data or apron changed since their cached mesh."""
        return concatenate_meshes([mesh for _, _, mesh in self.chunk_meshes()])

    def occupancy_slice(
        self, up_axis: int, up_sign: float, floor_m: float, low_m: float, high_m: float
    ) -> OccupancySlice:
        """The 2D occupancy of the heights [low_m, high_m] above the floor (``core.occupancy``);
        voxels below ``min_mesh_weight`` count as unobserved, as in the mesh."""
        with self._lock:
            columns = {key: (chunk.tsdf, chunk.weight) for key, chunk in self.chunks.items()}
            return occupancy_slice(
                columns,
                self.chunk_size,
                self.voxel_size,
                up_axis,
                up_sign,
                floor_m,
                low_m,
                high_m,
                self.min_mesh_weight,
            )

    def chunk_meshes(self) -> list[tuple[ChunkKey, tuple, Mesh]]:
        """``(key, stamp, mesh)`` of every chunk, in key order, remeshing stale chunks first.

        ``stamp`` changes whenever the chunk's mesh may have changed, so consumers can cache what
        they derive from a chunk (e.g. marker points) by ``(key, stamp)``. The meshes are the
        cache's own objects: do not modify them."""
        with self._lock:
            refiner = self.refiner
            stale = []
            for key in self.chunks:
                stamp = self._mesh_stamp(key)
                entry = self._mesh_cache.get(key)
                if entry is None or entry.stamp != stamp:
                    stale.append((key, stamp, self._mesh_arrays(key, refiner)))
        # Refinement and marching cubes outside the lock so merges are not held up.
        keep = self.chunk_size + 1
        refined = [None] * len(stale)
        if refiner is not None and stale:
            refined = refiner.refine([arrays for _, _, arrays in stale], keep)
        inner = slice(0, keep) if refiner is None else slice(refiner.halo, refiner.halo + keep)
        fresh = []
        for (key, stamp, block), better in zip(stale, refined, strict=True):
            arrays = {name: array[inner, inner, inner] for name, array in block.items()}
            if better is None:
                tsdf, observed = arrays["tsdf"], arrays["weight"] >= self.min_mesh_weight
                labels, confidence = arrays["label"], arrays["confidence"]
            else:
                tsdf, observed = better.tsdf, better.observed
                labels, confidence = better.label, better.confidence
            origin = np.asarray(key) * self.chunk_size * self.voxel_size
            mesh = extract_mesh(
                tsdf,
                observed,
                origin,
                self.voxel_size,
                labels=labels,
                confidence=confidence,
                rgb=arrays["rgb"],
                saturation=self.saturation,
            )
            fresh.append((key, stamp, mesh))
        with self._lock:
            self.chunks_remeshed_last_call = len(fresh)
            for key, stamp, mesh in fresh:
                if key in self.chunks:
                    self._mesh_cache[key] = _MeshCacheEntry(stamp, mesh)
            return [
                (k, self._mesh_cache[k].stamp, self._mesh_cache[k].mesh)
                for k in sorted(self.chunks)
                if k in self._mesh_cache
            ]

    # --- persistence -------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """All chunks as stacked arrays: ``keys`` (N, 3) int64 and the per-chunk arrays with a
        leading N axis."""
        with self._lock:
            keys = sorted(self.chunks)
            size = self.chunk_size
            if not keys:
                empty = MapChunk.empty(size)
                return {
                    "keys": np.zeros((0, 3), np.int64),
                    **{
                        n: np.zeros((0, *getattr(empty, n).shape), getattr(empty, n).dtype)
                        for n in ("tsdf", "weight", "label", "confidence", "rgb")
                    },
                }
            return {
                "keys": np.asarray(keys, dtype=np.int64),
                **{
                    name: np.stack([getattr(self.chunks[k], name) for k in keys])
                    for name in ("tsdf", "weight", "label", "confidence", "rgb")
                },
            }

    def check_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Raise ValueError naming the fault unless ``arrays`` is ``to_arrays`` output this map
        can hold: every array present with its shape and dtype, unique keys, a finite TSDF,
        no more chunks than ``max_chunks``."""
        size = self.chunk_size
        missing = {"keys", "tsdf", "weight", "label", "confidence", "rgb"} - set(arrays)
        if missing:
            raise ValueError(f"map: lacks the arrays {sorted(missing)}")
        keys = np.asarray(arrays["keys"])
        n = len(keys)
        expected = {
            "tsdf": ((n, size, size, size), np.float16),
            "weight": ((n, size, size, size), np.uint16),
            "label": ((n, size, size, size), np.uint8),
            "confidence": ((n, size, size, size), np.float16),
            "rgb": ((n, size, size, size, 3), np.uint8),
        }
        if keys.shape != (n, 3) or not np.issubdtype(keys.dtype, np.integer):
            raise ValueError(f"map keys: expected (N, 3) integers, got {keys.shape} {keys.dtype}")
        for name, (shape, dtype) in expected.items():
            array = arrays[name]
            if array.shape != shape or array.dtype != dtype:
                raise ValueError(
                    f"map {name}: expected {shape} {np.dtype(dtype)}, got {array.shape} "
                    f"{array.dtype}"
                )
        if len({tuple(k) for k in keys.tolist()}) != n:
            raise ValueError("map keys: a chunk appears twice")
        if n > self.max_chunks:
            raise ValueError(f"map: {n} chunks, more than max_chunks {self.max_chunks}")
        if not np.all(np.isfinite(arrays["tsdf"])):
            raise ValueError("map tsdf: holds values that are not finite")

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Replace the map's content with ``to_arrays`` output (checked by ``check_arrays``
        first: on a fault the map is left as it was)."""
        self.check_arrays(arrays)
        self.replace_arrays(arrays)

    def replace_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """``load_arrays`` for arrays that already passed ``check_arrays``."""
        keys = np.asarray(arrays["keys"])
        with self._lock:
            self.clear()
            for i, key in enumerate(keys):
                chunk = MapChunk(
                    tsdf=arrays["tsdf"][i].copy(),
                    weight=arrays["weight"][i].copy(),
                    label=arrays["label"][i].copy(),
                    confidence=arrays["confidence"][i].copy(),
                    rgb=arrays["rgb"][i].copy(),
                )
                self._bump(chunk)
                self.chunks[tuple(int(k) for k in key)] = chunk
