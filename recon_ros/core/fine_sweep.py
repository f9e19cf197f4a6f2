"""A narrow NCC sweep at a finer resolution around a first depth estimate: sub-plane depth from
geometry where the images have texture.

The depth network sweeps 64 planes at half its input size; at 2.5 m with a 20 cm baseline one of
its plane steps is about 15 % of the depth and one pixel of disparity about 30 cm. Around the
network's depth, upsampled to the reference image's size, this sweeps ``hypotheses`` depths per
pixel spanning ``span`` plane steps either side (even in inverse depth), scores each by the
grey-level NCC of the reference with every partner warped there (averaged over the partners that
see it), and fits a parabola through the best score and its two neighbours.

A pixel takes the swept depth only where matching is decisive: peak NCC at least ``min_score``
and the best hypothesis strictly inside the span (a peak at its edge says the first estimate was
off by more than the span). Elsewhere it keeps the first estimate. No training: NCC ignores
exposure and white-balance changes between frames, and real rooms have more texture than our
renders, so this is the part of the stereo that carries over to real cameras unchanged.

``fine_sweep_reference`` is a per-pixel loop of the same recipe, for tests.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.plane_sweep import MIN_PROJECTION_DEPTH, local_ncc, warp_to_depth_maps


class FineSweepResult(NamedTuple):
    """depth: (B, H, W) metres; score: (B, H, W) the peak NCC; refined: (B, H, W) bool, where
    the swept depth replaced the first estimate."""

    depth: torch.Tensor
    score: torch.Tensor
    refined: torch.Tensor


def _check(first_depth, reference, sources, K_ref, K_src, T_src_ref, hypotheses, window) -> None:
    if reference.ndim != 4 or reference.shape[1] != 1:
        raise ValueError(f"reference: expected (B, 1, H, W) grey, got {tuple(reference.shape)}")
    batch = reference.shape[0]
    if first_depth.ndim != 3 or first_depth.shape[0] != batch:
        raise ValueError(f"first_depth: expected ({batch}, h, w), got {tuple(first_depth.shape)}")
    if sources.ndim != 5 or sources.shape[0] != batch or sources.shape[2] != 1:
        raise ValueError(f"sources: expected ({batch}, S, 1, Hs, Ws), got {tuple(sources.shape)}")
    count = sources.shape[1]
    for name, tensor, shape in (
        ("K_ref", K_ref, (batch, 3, 3)),
        ("K_src", K_src, (batch, count, 3, 3)),
        ("T_src_ref", T_src_ref, (batch, count, 4, 4)),
    ):
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name}: expected {shape}, got {tuple(tensor.shape)}")
    if hypotheses < 3 or hypotheses % 2 == 0:
        raise ValueError(f"hypotheses: need an odd count of at least 3, got {hypotheses}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window: must be odd and positive, got {window}")


def upsample_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) depth -> (B, H, W), bilinear in inverse depth among known pixels; a pixel whose
    nearest source pixel is unknown (0) stays unknown, and unknown ones never blend in."""
    known = (depth > 0).to(depth.dtype)[:, None]
    inverse = torch.where(depth > 0, 1.0 / depth.clamp(min=1e-6), 0.0)[:, None]
    weight = F.interpolate(known, size=size, mode="bilinear", align_corners=False)
    total = F.interpolate(inverse, size=size, mode="bilinear", align_corners=False)
    keep = F.interpolate(known, size=size, mode="nearest") > 0
    upsampled = 1.0 / (total / weight.clamp(min=1e-6)).clamp(min=1e-6)
    return torch.where(keep & (weight > 0), upsampled, 0.0)[:, 0]


def hypothesis_offsets(hypotheses: int, span: float) -> torch.Tensor:
    """(D,) offsets in plane steps, evenly from ``-span`` to ``span``."""
    return torch.linspace(-span, span, hypotheses)


def _parabola_peak(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best index of (B, D, H, W) scores along D, refined by a parabola through it and its
    neighbours: (index (B, H, W) float, peak score, interior bool)."""
    planes = scores.shape[1]
    best = scores.argmax(dim=1)
    middle = best.clamp(1, planes - 2)
    left = scores.gather(1, (middle - 1)[:, None])[:, 0]
    centre = scores.gather(1, middle[:, None])[:, 0]
    right = scores.gather(1, (middle + 1)[:, None])[:, 0]
    curvature = left - 2.0 * centre + right
    shift = torch.where(
        curvature < -1e-6, 0.5 * (left - right) / curvature.clamp(max=-1e-6), 0.0
    ).clamp(-0.5, 0.5)
    interior = (best > 0) & (best < planes - 1)
    return middle.to(scores.dtype) + shift, centre, interior


def fine_sweep(
    first_depth: torch.Tensor,
    reference: torch.Tensor,
    sources: torch.Tensor,
    K_ref: torch.Tensor,
    K_src: torch.Tensor,
    T_src_ref: torch.Tensor,
    *,
    plane_step: float,
    hypotheses: int = 17,
    span: float = 2.0,
    window: int = 7,
    min_score: float = 0.5,
) -> FineSweepResult:
    """Refine ``first_depth`` by a narrow NCC sweep at the reference's size (module docstring).

    Args:
        first_depth: (B, h, w) metres (0: unknown, left unknown), any size; upsampled to (H, W).
        reference: (B, 1, H, W) grey reference image.
        sources: (B, S, 1, Hs, Ws) grey partner images.
        K_ref: (B, 3, 3) at (H, W); K_src: (B, S, 3, 3) at (Hs, Ws).
        T_src_ref: (B, S, 4, 4) reference optical frame to each partner's.
        plane_step: the first estimate's plane spacing in inverse depth (1/m).
        hypotheses: odd number of depths swept per pixel.
        span: the sweep reaches this many plane steps either side of the first estimate.
        window: NCC box size (odd).
        min_score: peak NCC below this keeps the first estimate.

    Returns:
        ``FineSweepResult`` at (H, W).
    """
    _check(first_depth, reference, sources, K_ref, K_src, T_src_ref, hypotheses, window)
    if not (plane_step > 0 and math.isfinite(plane_step)):
        raise ValueError(f"plane_step: need a positive inverse depth, got {plane_step}")
    size = tuple(reference.shape[-2:])
    depth = upsample_depth(first_depth, size)
    known = depth > 0
    inverse = torch.where(known, 1.0 / depth.clamp(min=1e-6), 1.0)
    offsets = hypothesis_offsets(hypotheses, span).to(inverse) * plane_step
    # Hypotheses never cross behind the camera: inverse depth stays above a 100 m far plane.
    candidates = 1.0 / (inverse[:, None] + offsets.view(1, -1, 1, 1)).clamp(min=0.01)
    score_sum = torch.zeros_like(candidates)
    seen = torch.zeros_like(candidates)
    for s in range(sources.shape[1]):
        warped, valid = warp_to_depth_maps(
            sources[:, s], K_ref, K_src[:, s], T_src_ref[:, s], candidates
        )
        score_sum += local_ncc(reference, warped, valid, window)
        seen += valid.to(seen.dtype)
    scores = score_sum / seen.clamp(min=1.0)
    index, peak, interior = _parabola_peak(scores)
    swept = 1.0 / (inverse + (index * (2.0 * span / (hypotheses - 1)) - span) * plane_step).clamp(
        min=0.01
    )
    refined = known & interior & (peak >= min_score)
    return FineSweepResult(torch.where(refined, swept, depth), peak, refined)


def _project(K_src, T_src_ref, K_ref_inv, x: int, y: int, depth: float):
    point = depth * (K_ref_inv @ torch.tensor([x, y, 1.0], dtype=torch.float64))
    p = K_src @ (T_src_ref[:3, :3] @ point + T_src_ref[:3, 3])
    return p


def fine_sweep_reference(
    first_depth: torch.Tensor,
    reference: torch.Tensor,
    sources: torch.Tensor,
    K_ref: torch.Tensor,
    K_src: torch.Tensor,
    T_src_ref: torch.Tensor,
    *,
    plane_step: float,
    hypotheses: int = 17,
    span: float = 2.0,
    window: int = 7,
    min_score: float = 0.5,
) -> FineSweepResult:
    """``fine_sweep`` pixel by pixel (same arguments and results), for tests: each sample
    projected on its own, each NCC box summed in a loop."""
    from recon_ros.core.plane_sweep import _bilinear_zero

    _check(first_depth, reference, sources, K_ref, K_src, T_src_ref, hypotheses, window)
    batch, _, height, width = reference.shape
    count, (source_height, source_width) = sources.shape[1], sources.shape[-2:]
    depth = upsample_depth(first_depth, (height, width)).double()
    offsets = hypothesis_offsets(hypotheses, span).double() * plane_step
    pad = window // 2
    out_depth = depth.clone()
    out_score = torch.zeros(batch, height, width, dtype=torch.float64)
    out_refined = torch.zeros(batch, height, width, dtype=torch.bool)
    for b in range(batch):
        K_inv = torch.linalg.inv(K_ref[b].double())
        known = depth[b] > 0
        inverse = torch.where(known, 1.0 / depth[b].clamp(min=1e-6), 1.0)
        candidates = 1.0 / (inverse[None] + offsets.view(-1, 1, 1)).clamp(min=0.01)  # (D, H, W)
        # Every warped sample, one projection each.
        samples = torch.zeros(count, hypotheses, height, width, dtype=torch.float64)
        valid = torch.zeros(count, hypotheses, height, width, dtype=torch.bool)
        for s in range(count):
            for k in range(hypotheses):
                for y in range(height):
                    for x in range(width):
                        p = _project(
                            K_src[b, s].double(), T_src_ref[b, s].double(), K_inv, x, y,
                            float(candidates[k, y, x]),
                        )  # fmt: skip
                        if p[2] <= MIN_PROJECTION_DEPTH:
                            continue
                        u, v = float(p[0] / p[2]), float(p[1] / p[2])
                        if -0.5 <= u <= source_width - 0.5 and -0.5 <= v <= source_height - 0.5:
                            valid[s, k, y, x] = True
                            samples[s, k, y, x] = _bilinear_zero(sources[b, s].double(), u, v)[0]
        ref = reference[b, 0].double()
        scores = torch.zeros(hypotheses, height, width, dtype=torch.float64)
        for y in range(height):
            for x in range(width):
                box = (slice(max(0, y - pad), y + pad + 1), slice(max(0, x - pad), x + pad + 1))
                r = ref[box]
                for k in range(hypotheses):
                    total, seen = 0.0, 0
                    for s in range(count):
                        seen += int(valid[s, k, y, x])
                        if not bool(valid[s, k][box].all()):
                            continue  # an invalid sample in the box: no evidence (NCC 0)
                        w = samples[s, k][box]
                        cov = (r * w).mean() - r.mean() * w.mean()
                        var_r = ((r * r).mean() - r.mean() ** 2).clamp(min=0.0)
                        var_w = ((w * w).mean() - w.mean() ** 2).clamp(min=0.0)
                        ncc = cov / torch.sqrt((var_r + 1e-4) * (var_w + 1e-4))
                        total += float(ncc.clamp(-1.0, 1.0))
                    scores[k, y, x] = total / max(seen, 1)
        index, peak, interior = _parabola_peak(scores[None])
        step = 2.0 * span / (hypotheses - 1)
        swept = 1.0 / (inverse + (index[0] * step - span) * plane_step).clamp(min=0.01)
        refined = known & interior[0] & (peak[0] >= min_score)
        out_depth[b] = torch.where(refined, swept, depth[b])
        out_score[b] = peak[0]
        out_refined[b] = refined
    return FineSweepResult(out_depth.to(reference.dtype), out_score.to(reference.dtype),
                           out_refined)  # fmt: skip
