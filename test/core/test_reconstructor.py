"""AtlasReconstructor end to end on synthetic frames (untrained weights: geometry is arbitrary,
the plumbing is real)."""

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.core.camera import PinholeCamera
from recon_ros.core.geometry import look_at_pose
from recon_ros.core.reconstructor import AtlasReconstructor, ReconstructorConfig

SHIPPED = Path(__file__).resolve().parents[2] / "recon_ros" / "weights" / "atlas_untrained.pt"
K = np.array([[120.0, 0.0, 79.5], [0.0, 120.0, 59.5], [0.0, 0.0, 1.0]])


def tiny_model() -> AtlasModel:
    torch.manual_seed(0)
    config = AtlasModelConfig.small(
        backbone_widths=(4, 8, 8, 8, 8),
        fpn_channels=8,
        merge_channels=8,
        feature_channels=4,
        base_channels_3d=4,
        image_size=(128, 96),
    )
    return AtlasModel(config)


def config(**overrides) -> ReconstructorConfig:
    values = {
        "window_dims": (32, 32, 32),
        "chunk_size": 16,
        "max_map_chunks": 64,
        "device": "cpu",
        "window_mode": "3d",
        "window_forward_offset": 1.2,
        "window_hysteresis": 100.0,  # the window stays where the first frame put it
        "pipeline": "atlas",
    }
    values.update(overrides)
    return ReconstructorConfig(**values)


def frames(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        angle = 0.5 * i
        position = [1.2 - 1.2 * np.cos(angle) * 0.3, 0.4 * np.sin(angle), 0.5]
        T = look_at_pose(position, [1.2, 0.0, 0.4])
        image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        yield image, K, T, float(i)


def test_end_to_end_save_load_reset(tmp_path):
    rec = AtlasReconstructor(SHIPPED, config())
    assert rec.model_metadata["trained"] is False
    assert not rec.window.placed and rec.update().ran is False
    results = [rec.integrate(*frame) for frame in frames(4)]
    assert all(r.integrated for r in results) and not any(r.window_shifted for r in results)
    assert rec.window.placed
    update = rec.update()
    assert update.ran and update.voxels_updated > 0 and rec.stats.map_chunks > 0
    assert rec.update().ran is False  # nothing new
    mesh = rec.mesh(color_by="semantic")
    assert mesh.num_faces > 0
    lower, upper = rec.window.bounds
    assert np.all(mesh.vertices >= lower) and np.all(mesh.vertices <= upper)
    assert mesh.vertices.dtype == np.float32 and mesh.colors.dtype == np.uint8
    assert mesh.faces.max() < mesh.num_vertices
    assert np.all(mesh.colors == rec.color_table[mesh.labels])
    assert np.all(mesh.labels < 9)
    np.testing.assert_array_equal(rec.mesh(color_by="rgb").colors, mesh.rgb)
    points = rec.semantic_points()
    assert 0 < len(points) <= mesh.num_vertices
    assert np.all(points.xyz >= lower) and np.all(points.xyz <= upper)
    assert points.rgb.dtype == np.uint8 and points.confidence.dtype == np.float32
    assert np.all((points.confidence >= 0) & (points.confidence <= 1))
    stats = rec.stats
    for stage in ("feature_extraction", "backprojection", "cnn_3d", "merge", "meshing"):
        assert stats.timings[stage].count > 0 and stats.timings[stage].mean_ms > 0
    assert stats.counters["keyframes_integrated"] == 4

    rec.save(tmp_path / "map")
    loaded = AtlasReconstructor.load(tmp_path / "map", SHIPPED, config())
    again = loaded.mesh(color_by="semantic")
    np.testing.assert_array_equal(again.vertices, mesh.vertices)
    np.testing.assert_array_equal(again.labels, mesh.labels)
    with pytest.raises(ValueError, match="voxel_size"):
        AtlasReconstructor.load(tmp_path / "map", SHIPPED, config(voxel_size=0.05))
    with pytest.raises(FileNotFoundError):
        AtlasReconstructor.load(tmp_path / "nothing", SHIPPED, config())

    rec.reset()
    assert rec.mesh().num_faces == 0 and rec.stats.map_chunks == 0
    assert rec.stats.counters["keyframes_integrated"] == 0 and not rec.window.placed
    assert rec.integrate(*next(frames(1))).integrated  # first frame after reset is a keyframe


def test_keyframe_gating_counts():
    rec = AtlasReconstructor(
        tiny_model(), config(keyframe_min_translation=0.1, keyframe_min_rotation_deg=15)
    )
    image = np.zeros((120, 160, 3), np.uint8)
    T = look_at_pose([0.0, 0.0, 0.5], [1.0, 0.0, 0.5])
    moved = lambda dx: T + np.pad(np.array([[dx], [0], [0]]), ((0, 1), (3, 0)))  # noqa: E731
    turned = look_at_pose([0.0, 0.0, 0.5], [1.0, np.tan(np.radians(16)), 0.5])
    outcomes = [
        rec.integrate(image, K, pose).integrated
        for pose in (T, T, moved(0.05), moved(0.11), moved(0.11), turned)
    ]
    assert outcomes == [True, False, False, True, False, True]
    counters = rec.stats.counters
    assert counters["frames_received"] == 6
    assert counters["keyframes_integrated"] == 3 and counters["frames_skipped_not_keyframe"] == 3
    every = AtlasReconstructor(
        tiny_model(), config(keyframe_min_translation=0, keyframe_min_rotation_deg=0)
    )
    assert all(every.integrate(image, K, T).integrated for _ in range(3))


def test_bad_input_raises_and_changes_nothing():
    rec = AtlasReconstructor(tiny_model(), config())
    image = np.zeros((120, 160, 3), np.uint8)
    T = look_at_pose([0.0, 0.0, 0.5], [1.0, 0.0, 0.5])
    nan_pose = T.copy()
    nan_pose[1, 3] = np.nan
    with pytest.raises(ValueError, match="T_world_cam: contains NaN"):
        rec.integrate(image, K, nan_pose)
    zero_focal = K.copy()
    zero_focal[0, 0] = 0.0
    with pytest.raises(ValueError, match="focal"):
        rec.integrate(image, zero_focal, T)
    with pytest.raises(ValueError, match="empty"):
        rec.integrate(np.zeros((0, 160, 3), np.uint8), K, T)
    with pytest.raises(ValueError, match="uint8"):
        rec.integrate(image.astype(np.float32), K, T)
    sheared = T.copy()
    sheared[0, 1] += 0.2
    with pytest.raises(ValueError, match="orthonormal"):
        rec.integrate(image, K, sheared)
    with pytest.raises(ValueError, match="stamp"):
        rec.integrate(image, K, T, float("nan"))
    with pytest.raises(ValueError, match="color_by"):
        rec.mesh(color_by="height")
    # the camera-object path: a camera of another size, a stamp in seconds, no camera at all
    camera = PinholeCamera.from_matrix(K, 160, 120)
    with pytest.raises(ValueError, match="differs from the image"):
        rec.integrate_view(image, camera.resized(80, 60), T, 0)
    with pytest.raises(ValueError, match="integer nanoseconds"):
        rec.integrate_view(image, camera, T, 1.5)
    with pytest.raises(ValueError, match="PinholeCamera"):
        rec.integrate_view(image, K, T, 0)
    with pytest.raises(ValueError, match="its camera"):
        rec.integrate_view(image, camera, T, 0, np.ones((60, 80), np.float32))
    assert rec.stats.counters["frames_received"] == 0


def test_integrate_with_a_camera_and_nanoseconds_equals_the_matrix_path():
    """``integrate_view`` (camera object, integer ns: what the node and replay call) and
    ``integrate`` (K, seconds) map the same frames to the same window, stamps kept exactly."""
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    poses = [look_at_pose([0.3 * i, 0.0, 0.5], [0.3 * i + 1.0, 0.0, 0.4]) for i in range(3)]
    stamp_ns = 1_700_000_000_123_456_789  # beyond float seconds' nanosecond precision
    by_matrix = AtlasReconstructor(tiny_model(), config())
    by_camera = AtlasReconstructor(tiny_model(), config())
    camera = PinholeCamera.from_matrix(K, 160, 120)
    for i, (image, T) in enumerate(zip(images, poses, strict=True)):
        a = by_matrix.integrate(image, K, T, (stamp_ns + i) * 1e-9)
        b = by_camera.integrate_view(image, camera, T, np.int64(stamp_ns + i))
        assert a.integrated == b.integrated and b.stamp_ns == stamp_ns + i
    assert torch.equal(by_matrix._volume.sums, by_camera._volume.sums)
    assert torch.equal(by_matrix._volume.count, by_camera._volume.count)
    assert by_camera._volume.count.sum() > 0


def test_window_follows_camera_and_flushes_before_shifting():
    rec = AtlasReconstructor(
        tiny_model(),
        config(window_hysteresis=0.0, window_forward_offset=0.6, keyframe_min_translation=0.05),
    )
    rng = np.random.default_rng(1)
    origins, flushed = [], 0
    for step in range(8):
        T = look_at_pose([0.3 * step, 0.0, 0.5], [0.3 * step + 1.0, 0.0, 0.4])
        result = rec.integrate(
            rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), K, T, float(step)
        )
        origins.append(rec.window.origin_index.copy())
        flushed += result.flushed
        assert result.window_shifted == result.flushed  # every shift found unmerged frames
    assert len({tuple(o) for o in origins}) > 2 and flushed > 0
    assert all(np.all(o % 16 == 0) for o in origins)
    counters = rec.stats.counters
    assert counters["unmerged_voxels_dropped"] == 0 and counters["window_shifts"] == flushed
    rec.update()
    first_window_chunk = tuple(int(c) for c in origins[0] // 16)
    assert first_window_chunk in rec.map.chunks  # kept in the map after the window left


def test_concurrent_integrate_update_mesh():
    rec = AtlasReconstructor(
        tiny_model(),
        config(window_hysteresis=0.0, keyframe_min_translation=0.0, keyframe_min_rotation_deg=0.0),
    )
    errors = []

    def integrate_all():
        try:
            for i in range(10):
                T = look_at_pose([0.25 * i, 0.1, 0.5], [0.25 * i + 1.0, 0.0, 0.4])
                rec.integrate(np.full((120, 160, 3), 20 * i, np.uint8), K, T, float(i))
        except Exception as error:  # reported below
            errors.append(error)

    worker = threading.Thread(target=integrate_all)
    worker.start()
    while worker.is_alive():
        try:
            rec.update()
            rec.mesh()
            rec.semantic_points()
        except Exception as error:
            errors.append(error)
            break
    worker.join()
    assert not errors
    rec.update()
    assert rec.stats.counters["keyframes_integrated"] == 10 and rec.stats.map_chunks > 0


def test_config_from_dict_and_validation():
    cfg = ReconstructorConfig.from_dict(
        {
            "window_dims": [32, 32, 16],
            "chunk_size": 16,
            "max_map_chunks": 100,
            "voxel_size": "",
            "max_depth": 4.0,
        }
    )
    assert cfg.window_dims == (32, 32, 16) and cfg.voxel_size is None and cfg.max_depth == 4.0
    with pytest.raises(ValueError, match="unknown keys"):
        ReconstructorConfig.from_dict({"voxel": 0.04})
    with pytest.raises(ValueError, match="window_dims"):
        ReconstructorConfig(window_dims=(40, 32, 32))
    with pytest.raises(ValueError, match="max_map_chunks"):
        ReconstructorConfig(window_dims=(32, 32, 32), max_map_chunks=4)
    with pytest.raises(ValueError, match="chunk_size"):
        ReconstructorConfig(chunk_size=12, window_dims=(36, 36, 36))
    with pytest.raises(ValueError, match="voxel_size"):
        ReconstructorConfig(voxel_size=0.0)
    with pytest.raises(ValueError, match="keyframe_min_rotation_deg"):
        ReconstructorConfig(keyframe_min_rotation_deg=-1.0)
    with pytest.raises(ValueError, match="window mode"):
        ReconstructorConfig(window_mode="orbit")
    with pytest.raises(ValueError, match="model"):
        AtlasReconstructor(42, config())


def test_mesh_chunks_add_up_to_the_mesh_and_stamps_track_changes():
    rec = AtlasReconstructor(SHIPPED, config())
    for frame in frames(3):
        rec.integrate(*frame)
    rec.update()
    whole = rec.mesh("semantic")
    chunks = rec.mesh_chunks("semantic")
    assert len(chunks) > 1 and [k for k, _, _ in chunks] == sorted(k for k, _, _ in chunks)
    assert sum(len(m.faces) for _, _, m in chunks) == len(whole.faces) > 0
    np.testing.assert_array_equal(np.concatenate([m.colors for _, _, m in chunks]), whole.colors)
    rgb = rec.mesh_chunks("rgb")
    assert [s for _, s, _ in rgb] == [s for _, s, _ in chunks]  # nothing changed in between
    np.testing.assert_array_equal(np.concatenate([m.colors for _, _, m in rgb]), whole.rgb)
    for frame in frames(2, seed=1):
        rec.integrate(*frame)
    rec.update()
    after = {k: s for k, s, _ in rec.mesh_chunks()}
    before = {k: s for k, s, _ in chunks}
    assert any(after.get(k) != s for k, s in before.items())  # new frames changed some chunks
