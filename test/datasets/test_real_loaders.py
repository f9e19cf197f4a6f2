"""Loaders for ScanNet, 7-Scenes and TUM RGB-D folders, on small folders built here."""

import numpy as np
import pytest
from PIL import Image

from recon_ros.core.geometry import matrix_to_quaternion
from recon_ros.datasets.real import ScanNetSequence, SevenScenesSequence, TUMSequence
from recon_ros.scenes.geometry import make_pose, rot_x, rot_z


def _pose(i: int) -> np.ndarray:
    return make_pose(rot_z(0.1 * i) @ rot_x(-1.2), (0.1 * i, 0.5, 1.4))


def _rgb(rng, w, h):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _write_matrix(path, M):
    np.savetxt(path, M, fmt="%.9f")


def test_scannet_export(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("color", "depth", "pose", "intrinsic"):
        (tmp_path / sub).mkdir()
    K_color = np.array([[1170.2, 0, 647.8, 0], [0, 1170.2, 483.8, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    K_depth = np.array([[577.6, 0, 318.9, 0], [0, 577.6, 238.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    _write_matrix(tmp_path / "intrinsic" / "intrinsic_color.txt", K_color)
    _write_matrix(tmp_path / "intrinsic" / "intrinsic_depth.txt", K_depth)
    depths = {}
    for i in (0, 1, 2, 10):  # frame numbers need not be contiguous or zero padded
        Image.fromarray(_rgb(rng, 1296 // 8, 968 // 8)).save(
            tmp_path / "color" / f"{i}.jpg", quality=95
        )
        depths[i] = rng.integers(0, 5000, size=(60, 80), dtype=np.uint16)
        Image.fromarray(depths[i]).save(tmp_path / "depth" / f"{i}.png")
        pose = _pose(i) if i != 2 else np.full((4, 4), -np.inf)  # ScanNet's invalid poses
        _write_matrix(tmp_path / "pose" / f"{i}.txt", pose)

    seq = ScanNetSequence(tmp_path)
    assert len(seq) == 3 and seq.name == tmp_path.name
    frame = seq[2]
    assert frame.rgb.shape == (121, 162, 3)
    np.testing.assert_allclose(frame.depth, depths[10] / 1000.0)
    np.testing.assert_allclose(frame.T_world_cam, _pose(10), atol=1e-8)
    np.testing.assert_allclose(frame.K, K_color[:3, :3])
    np.testing.assert_allclose(frame.K_depth, K_depth[:3, :3])
    # Stamps keep the original frame spacing at 30 Hz.
    assert (seq.stamps_ns[2] - seq.stamps_ns[0]) == round(10 / 30 * 1e9)

    resized = ScanNetSequence(tmp_path, color_size=(81, 60), skip_invalid_poses=False)
    assert len(resized) == 4
    frame = resized[0]
    assert frame.rgb.shape == (60, 81, 3)
    np.testing.assert_allclose(frame.K[0, 0], 1170.2 * 81 / 162)
    np.testing.assert_allclose(frame.K[0, 2], (647.8 + 0.5) * 81 / 162 - 0.5)
    with pytest.raises(ValueError, match="root"):
        ScanNetSequence(tmp_path / "color")


def test_seven_scenes_sequence(tmp_path):
    rng = np.random.default_rng(1)
    seq_dir = tmp_path / "chess" / "seq-01"
    seq_dir.mkdir(parents=True)
    depths = []
    for i in range(3):
        Image.fromarray(_rgb(rng, 64, 48)).save(seq_dir / f"frame-{i:06d}.color.png")
        depth = rng.integers(400, 4000, size=(48, 64), dtype=np.uint16)
        depth[0, :5] = 65535  # invalid
        depths.append(depth)
        Image.fromarray(depth).save(seq_dir / f"frame-{i:06d}.depth.png")
        _write_matrix(seq_dir / f"frame-{i:06d}.pose.txt", _pose(i))
    seq = SevenScenesSequence(seq_dir)
    assert len(seq) == 3 and seq.name == "chess/seq-01"
    frame = seq[1]
    assert np.all(frame.depth[0, :5] == 0)
    np.testing.assert_allclose(frame.depth[1:], depths[1][1:] / 1000.0, rtol=1e-6)
    np.testing.assert_allclose(frame.T_world_cam, _pose(1), atol=1e-8)
    np.testing.assert_allclose(frame.K, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
    assert frame.rgb.shape == (48, 64, 3)
    np.testing.assert_allclose(np.diff(seq.stamps_ns), 1e9 / 30, atol=1)


def test_tum_sequence(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "rgbd_dataset_freiburg1_xyz"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb_lines, depth_lines, truth_lines = ["# color images"], ["# depth maps"], ["# ground truth"]
    rgb_times = [1305031102.175304, 1305031102.211214, 1305031102.243211, 1305031102.500000]
    depth_times = [1305031102.160407, 1305031102.226856, 1305031102.262088]
    depths = {}
    for t in rgb_times:
        name = f"rgb/{t:.6f}.png"
        Image.fromarray(_rgb(rng, 32, 24)).save(root / name)
        rgb_lines.append(f"{t:.6f} {name}")
    for t in depth_times:
        name = f"depth/{t:.6f}.png"
        depths[name] = rng.integers(0, 30000, size=(24, 32), dtype=np.uint16)
        Image.fromarray(depths[name]).save(root / name)
        depth_lines.append(f"{t:.6f} {name}")
    truth = {}
    for k in range(60):  # 100 Hz ground truth
        t = 1305031102.17 + 0.01 * k
        T = _pose(k)
        qx, qy, qz, qw = matrix_to_quaternion(T[:3, :3])
        truth[k] = T
        truth_lines.append(
            f"{t:.4f} {T[0, 3]:.4f} {T[1, 3]:.4f} {T[2, 3]:.4f} {qx:.6f} {qy:.6f} {qz:.6f} {qw:.6f}"
        )
    (root / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    (root / "groundtruth.txt").write_text("\n".join(truth_lines) + "\n")

    seq = TUMSequence(root)
    # The last colour image has no depth within 20 ms: dropped.
    assert len(seq) == 3
    np.testing.assert_array_equal(seq.stamps_ns[:2], [1305031102175304000, 1305031102211214000])
    frame = seq[0]
    # Nearest depth (15 ms away) and nearest ground truth (t = 1305031102.18, k = 1).
    np.testing.assert_allclose(
        frame.depth, depths["depth/1305031102.160407.png"] / 5000.0, rtol=1e-6
    )
    np.testing.assert_allclose(frame.T_world_cam, truth[1], atol=1e-4)
    np.testing.assert_allclose(frame.K, [[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
    assert frame.rgb.shape == (24, 32, 3)
    strict = TUMSequence(root, max_difference=0.015)
    assert len(strict) == 1  # only the first image has depth within 15 ms
    assert strict.stamps_ns[0] == 1305031102175304000
    custom = TUMSequence(root, K=np.diag([100.0, 100.0, 1.0]))
    np.testing.assert_allclose(custom[0].K[0, 0], 100.0)
    with pytest.raises(ValueError, match="root"):
        TUMSequence(tmp_path)
