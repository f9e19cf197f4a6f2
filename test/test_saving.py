"""Saving the map (atlas_node's save_map, ROS-free): one transaction per save, symlinks refused,
unique default names, stale temporaries removed, files readable by others (issue 9.5)."""

import os
import stat
import time

import numpy as np
import pytest

from recon_ros.core.atomic_io import TEMPORARY_DIRECTORY_TAG, atomic_directory
from recon_ros.core.reconstructor import AtlasReconstructor, ReconstructorConfig
from recon_ros.io.ply import read_ply
from recon_ros.reconstruction import save_map_outputs


@pytest.fixture(scope="module")
def mapped():
    """A reconstructor with a small map (sensor depth of a wall 1.5 m ahead)."""
    config = ReconstructorConfig(
        device="cpu",
        depth_source="sensor",
        window_dims=(32, 32, 32),
        chunk_size=8,
        voxel_size=0.08,
        keyframe_min_translation=0.0,
        keyframe_min_rotation_deg=0.0,
    )
    rec = AtlasReconstructor(None, config)
    K = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # optical z along world x
    T[2, 3] = 1.0
    for i in range(3):
        T[1, 3] = 0.1 * i
        rec.integrate(np.full((48, 64, 3), 100, np.uint8), K, T, float(i),
                      depth=np.full((48, 64), 1.5, np.float32))  # fmt: skip
    rec.update()
    return rec


def test_a_save_is_one_folder_readable_by_others(mapped, tmp_path):
    saved = save_map_outputs(mapped, tmp_path, "kitchen", "semantic")
    assert saved.folder == tmp_path / "kitchen" and saved.triangles > 0
    assert len(read_ply(saved.mesh_path)["faces"]) == saved.triangles
    loaded = AtlasReconstructor.load(saved.map_path, None, mapped.config)
    assert loaded.map.num_chunks == mapped.map.num_chunks
    umask = os.umask(0)
    os.umask(umask)
    for path in (saved.mesh_path, saved.map_path / "map.npz", saved.map_path / "map.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert stat.S_IMODE(saved.folder.stat().st_mode) == 0o777 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left over


def test_names_symlinks_and_an_interrupted_save(mapped, tmp_path):
    with pytest.raises(ValueError, match="refused name"):
        save_map_outputs(mapped, tmp_path, "../escape", "semantic")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "trap").symlink_to(outside)
    with pytest.raises(ValueError, match="symbolic link"):
        save_map_outputs(mapped, tmp_path / "out", "trap", "semantic")
    assert not any(outside.iterdir())
    # two saves without a name in the same second get two folders
    first = save_map_outputs(mapped, tmp_path / "out", "", "semantic")
    second = save_map_outputs(mapped, tmp_path / "out", "", "semantic")
    assert first.folder != second.folder and first.mesh_path.is_file()
    # a save killed half way leaves the previous save whole and a temporary folder, which the
    # next save removes once it is stale
    before = first.mesh_path.read_bytes()
    with pytest.raises(RuntimeError), atomic_directory(first.folder) as staging:
        (staging / "mesh.ply").write_bytes(b"partial")
        raise RuntimeError("killed")
    assert first.mesh_path.read_bytes() == before
    left = tmp_path / "out" / f".{first.folder.name}{TEMPORARY_DIRECTORY_TAG}abc"
    left.mkdir()
    old = time.time() - 3600
    os.utime(left, (old, old))
    save_map_outputs(mapped, tmp_path / "out", first.folder.name, "rgb")  # replaces it whole
    assert not left.exists()
    assert (first.map_path / "map.json").is_file() and first.mesh_path.read_bytes() != before


def test_load_map_replaces_the_map_or_keeps_it(mapped, tmp_path):
    """atlas_node's load_map, ROS-free (issue 10.6): a saved map found by folder, by its map/
    folder or by name; a damaged or mismatched one changes nothing."""
    from recon_ros.reconstruction import map_folder_to_load

    saved = save_map_outputs(mapped, tmp_path, "office", "semantic")
    assert map_folder_to_load(tmp_path, "office") == saved.map_path
    assert map_folder_to_load(tmp_path, str(saved.folder)) == saved.map_path
    assert map_folder_to_load(tmp_path, str(saved.map_path)) == saved.map_path
    with pytest.raises(FileNotFoundError, match="no saved map"):
        map_folder_to_load(tmp_path, "nowhere")

    other = AtlasReconstructor(None, mapped.config)
    K = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    T[2, 3] = 1.0
    for i in range(3):  # a wall nearer than the saved one
        T[1, 3] = 0.1 * i
        other.integrate(np.zeros((48, 64, 3), np.uint8), K, T, float(i),
                        depth=np.full((48, 64), 2.0, np.float32))  # fmt: skip
    other.update()
    assert other.map.num_chunks > 0
    assert other.mesh().vertices[:, 0].min() > 1.8  # its wall, at x = 2 m
    assert other.load_map(saved.map_path) == mapped.map.num_chunks
    np.testing.assert_array_equal(other.mesh().vertices, mapped.mesh().vertices)
    assert other.mesh().vertices[:, 0].max() < 1.8  # the saved wall only, at 1.5 m
    assert not other.window.placed  # the window starts afresh

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "map.json").write_bytes((saved.map_path / "map.json").read_bytes())
    (damaged / "map.npz").write_bytes((saved.map_path / "map.npz").read_bytes()[:100])
    loaded = other.map.to_arrays()
    with pytest.raises(ValueError, match="cannot be read"):
        other.load_map(damaged)
    arrays = dict(loaded)
    arrays["tsdf"] = arrays["tsdf"].copy()
    arrays["tsdf"][0, 0, 0, 0] = np.nan
    np.savez(damaged / "map.npz", **arrays)
    with pytest.raises(ValueError, match="not finite"):
        other.load_map(damaged)
    coarse = AtlasReconstructor(None, ReconstructorConfig(
        device="cpu", depth_source="sensor", window_dims=(32, 32, 32), chunk_size=8,
        voxel_size=0.1))  # fmt: skip
    with pytest.raises(ValueError, match="voxel_size"):
        coarse.load_map(saved.map_path)
    for name, array in other.map.to_arrays().items():  # untouched by the failed loads
        np.testing.assert_array_equal(array, loaded[name])


def test_mapping_pipeline_counts_hands_over_saves_and_loads(tmp_path):
    """The pipeline atlas_node and the replay share (issue 10.7), ROS-free."""
    from recon_ros import parameters
    from recon_ros.core.camera import PinholeCamera
    from recon_ros.io.posed_frames import PosedFrame
    from recon_ros.reconstruction import MappingPipeline

    values = parameters.resolve(
        {
            "device": "cpu",
            "depth_source": "sensor",
            "window_dims": [32, 32, 32],
            "chunk_size": 8,
            "voxel_size_m": 0.08,
            "keyframe_min_translation_m": 0.05,
            "keyframe_min_rotation_deg": 30.0,
            "cnn_period_s": 1.0,
        }
    )
    pipeline = MappingPipeline(values)
    assert pipeline.reconstructor.voxel_size == 0.08 and "fusion pipeline" in pipeline.description
    camera = PinholeCamera(fx=60.0, fy=60.0, cx=31.5, cy=23.5, width=64, height=48)
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    T[2, 3] = 1.0

    def frame(i: int, dy: float) -> PosedFrame:
        pose = T.copy()
        pose[1, 3] = dy
        return PosedFrame(i * 500_000_000, "cam", np.full((48, 64, 3), 90, np.uint8), camera,
                          pose, None, depth=np.full((48, 64), 1.5, np.float32))  # fmt: skip

    ran, mapped = [], []
    for i, dy in enumerate([0.0, 0.0, 0.1, 0.2, 0.2, 0.3]):  # the repeats are not keyframes
        result = pipeline.offer(frame(i, dy))
        if result.integrated:
            ran.append(pipeline.update_at(i * 500_000_000))
            mapped.append(pipeline.frames_mapped())
    assert pipeline.counts()[:2] == (4, 2)
    assert mapped == [0, 2, 2, 4]  # the map lags the window until a hand-over
    # bag time 0, 1.0, 1.5, 2.5 s: hand-overs at 1.0 s and 2.5 s (a period after the last)
    assert ran == [False, True, False, True] and pipeline.counts()[2] == 2
    assert pipeline.update() is False  # nothing new since
    saved = pipeline.save(tmp_path, "room")
    assert saved.triangles > 0
    pipeline.reset()
    assert pipeline.reconstructor.map.num_chunks == 0 and pipeline.counts()[0] == 4
    folder, chunks = pipeline.load(tmp_path, "room")
    assert folder == saved.map_path and chunks == pipeline.reconstructor.map.num_chunks > 0


def test_untrained_atlas_weights_are_never_a_default():
    """The atlas pipeline without weights_path refuses to start while no trained Atlas weights
    ship (the plumbing checkpoint only runs when named, with a loud warning)."""
    import pytest

    from recon_ros import parameters
    from recon_ros.reconstruction import build_reconstructor
    from recon_ros.weights import WEIGHTS_DIR

    base = {"device": "cpu", "pipeline": "atlas", "window_dims": [32, 32, 32]}
    if not (WEIGHTS_DIR / "atlas_default.pt").is_file():
        with pytest.raises(FileNotFoundError, match="weights_path"):
            build_reconstructor(parameters.resolve(base))
    named = parameters.resolve({**base, "weights_path": str(WEIGHTS_DIR / "atlas_untrained.pt")})
    _, description, warnings = build_reconstructor(named)
    assert "atlas_untrained.pt" in description
    assert any("UNTRAINED" in w for w in warnings)


def test_the_default_parameters_map_with_trained_weights():
    """atlas_node's and the replay's defaults (the fusion pipeline) load the shipped depth and
    semantic networks, both trained, and say nothing is untrained or missing; the plumbing
    Atlas checkpoint plays no part."""
    from recon_ros import parameters
    from recon_ros.reconstruction import build_reconstructor
    from recon_ros.weights import WEIGHTS_DIR

    values = parameters.resolve({"device": "cpu", "window_dims": [32, 32, 32]})
    assert values["pipeline"] == "fusion"
    reconstructor, description, warnings = build_reconstructor(values)
    assert warnings == []
    assert str(WEIGHTS_DIR / "depth_default.pt") in description
    assert str(WEIGHTS_DIR / "semantic_default.pt") in description
    assert "atlas_untrained" not in description
    assert reconstructor.trained is True  # the depth network's metadata
    assert reconstructor.semantic_metadata.get("trained") is True
