"""``recon-ros evaluate atlas``: evaluate an Atlas checkpoint on a folder of scenes (generated,
ScanNet, 7-Scenes or TUM layouts) through ``AtlasReconstructor``, with the Atlas paper's metrics
(Table 1: 3D and 2D; Table 4: semantic IoU) and, in the same run, the upper bound of TSDF fusion
of the ground-truth depth. See ``recon_ros.training.evaluation`` for the procedure.

Writes into ``--out``: ``results.md`` (markdown tables), ``results.json`` (every number, per scene
and aggregated), ``iou.png`` (per-class IoU of the model and the upper bound), ``scenes.png``
(F-score per scene) and, with ``--frames-study``, ``frames.png`` (quality against the number of
input frames, the paper's Fig. 5).

Example::

    recon-ros evaluate atlas --data data/atlas/test --out runs/eval_test \\
        --frames-study 5 10 20 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.checkpoint import load_atlas_model
from recon_ros.core.depth_checkpoint import load_depth_net
from recon_ros.training.evaluation import (
    DEPTH_KEYS,
    LAYOUTS,
    Pipeline,
    aggregate,
    evaluate_scene,
    frame_subset,
    list_evaluation_scenes,
    load_frames,
    load_ground_truth_for,
    open_sequence,
    reconstruct,
    score,
)
from recon_ros.training.feature_cache import file_sha256
from recon_ros.training.metrics import iou_from_confusion, mean_of_present
from recon_ros.training.plots import plot_bars, plot_frames_curve, save_figure


def reconstructor_config(args: argparse.Namespace):
    """The ``ReconstructorConfig`` of atlas_node's parameters (defaults, ``--params-file``,
    then the command-line overrides)."""
    from recon_ros import parameters
    from recon_ros.core.reconstructor import ReconstructorConfig

    params = parameters.load_params_file(args.params_file) if args.params_file else {}
    params.pop("weights_path", None)
    if args.device:
        params["device"] = args.device
    if args.window_dims:
        params["window_dims"] = list(args.window_dims)
    values = parameters.resolve(params)
    period = float(values["cnn_period_s"]) if args.cnn_period is None else args.cnn_period
    if args.refinement is not None:
        values["refinement"] = args.refinement == "on"
    if args.refine_weights:
        values["refine_weights_path"] = args.refine_weights
    if args.refinement_mode:
        values["refinement_mode"] = args.refinement_mode
    if args.semantic_weights:
        values["semantic_weights_path"] = args.semantic_weights
    if args.labels_from:
        values["labels_from"] = args.labels_from
    args.refinement_values = values
    return ReconstructorConfig.from_dict(parameters.core_config_dict(values)), period


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _report_rows(report: dict) -> list[tuple[str, dict]]:
    """(label, metrics) of every row in the report's order, the upper bound last."""
    labels = report.get("rows") or {"model": "model"}
    rows = [(labels[name], report[name]) for name in labels if report.get(name)]
    if (
        report.get("pipeline") == "fusion"
        and report.get("mvs_fusion")
        and "mvs_fusion" not in labels
    ):
        rows.insert(
            1,
            (
                "fusion of predicted depth alone (= default: no 3D network on top)",
                report["mvs_fusion"],
            ),
        )
    if report.get("upper_bound"):
        rows.append(("TSDF fusion of GT depth on the GT grid (upper bound)", report["upper_bound"]))
    return rows


def markdown_report(report: dict) -> str:
    """The evaluation as markdown tables."""
    names = report["class_names"]
    rows = _report_rows(report)
    weights = []
    names_of = {
        "depth_weights": "depth network",
        "refine_weights": "3D refinement network",
        "semantic_weights": "semantic network",
        "weights": "Atlas",
    }
    for key, what in names_of.items():
        if report.get(key):
            weights.append(
                f"- {what} weights: "
                f"`{report[key]}` (sha256 `{report[key + '_sha256'][:16]}...`, trained: "
                f"{report.get(key + '_trained')})"
            )
    lines = [
        "# Reconstruction evaluation",
        "",
        *weights,
        f"- data: {', '.join(f'`{d}`' for d in report['data'])}: {len(report['scenes'])} scenes",
        f"- reconstructor: {report.get('pipeline', 'atlas')} pipeline, window "
        f"{report['config']['window_dims']}, voxel {report['voxel_size']} m, keyframes every "
        f"{report['config']['keyframe_min_translation']} m / "
        f"{report['config']['keyframe_min_rotation_deg']} deg, map updates every "
        f"{report['cnn_period_s']} s of frame time, device {report['device']}",
        f"- wall time: {report['seconds']:.0f} s",
        "",
        "## 3D geometry (Table 1: L1 over observed voxels with t* < 1; points within 5 cm)",
        "",
        "| method | L1 | Acc (m) | Comp (m) | Prec | Recall | F-score |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    point_keys = ("l1", "acc", "comp", "prec", "recall", "fscore")
    for label, row in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(row.get(k)) for k in point_keys) + " |")
    lines += [
        "",
        "## 2D depth rendered from the mesh at the input poses",
        "",
        "| method | AbsRel | AbsDiff | SqRel | RMSE | δ<1.25 | δ<1.25² | δ<1.25³ | Comp |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, row in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(row.get(k)) for k in DEPTH_KEYS) + " |")
    network = report["model"].get("depth_network")
    if network:
        lines += [
            "",
            "## The depth network per keyframe (confident pixels, at its output resolution)",
            "",
            "| AbsRel | RMSE | δ<1.25 | δ<1.25² | share of pixels kept |",
            "| --- | --- | --- | --- | --- |",
            f"| {_fmt(network['abs_rel'])} | {_fmt(network['rmse'])} | "
            f"{_fmt(network['delta1'])} | {_fmt(network['delta2'])} | {_fmt(network['comp'])} |",
        ]
    labelled = [(label, row) for label, row in rows if "iou" in row]
    if labelled:
        lines += [
            "",
            "## Semantics (IoU, labels transferred to the ground-truth mesh by nearest neighbour)",
            "",
            "| method | " + " | ".join(names) + " | mIoU |",
            "| --- |" + " --- |" * (len(names) + 1),
        ]
        for label, row in labelled:
            lines.append(
                f"| {label} | " + " | ".join(_fmt(v) for v in row["iou"]) + f" | "
                f"{_fmt(row['miou'])} |"
            )
    lines += [
        "",
        "## Per scene",
        "",
        "| scene | frames | keyframes | L1 | F-score | AbsRel | mIoU | upper-bound F-score | s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scene in report["scenes"]:
        m, b, info = scene["model"], scene["upper_bound"], scene["info"]
        miou = (
            mean_of_present(iou_from_confusion(np.asarray(m["confusion"])))
            if "confusion" in m
            else None
        )
        lines.append(
            f"| {scene['name']} | {info['frames']} | {info['keyframes']} | {_fmt(m['l1'])} | "
            f"{_fmt(m['fscore'])} | {_fmt(m['depth_abs_rel'])} | {_fmt(miou)} | "
            f"{_fmt(b.get('fscore'))} | {m['seconds']:.0f} |"
        )
    study = report.get("frames_study")
    if study:
        lines += [
            "",
            f"## Quality against the number of input frames ({study['scenes']} scenes, frames "
            "evenly spaced)",
            "",
            "| frames | F-score | L1 | AbsRel | mIoU |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, n in enumerate(study["frames"]):
            lines.append(
                f"| {n} | {_fmt(study['fscore'][i])} | {_fmt(study['l1'][i])} | "
                f"{_fmt(study['depth_abs_rel'][i])} | {_fmt(study['miou'][i])} |"
            )
    return "\n".join(lines) + "\n"


def frames_study(
    folders: list[Path],
    pipeline: Pipeline,
    period: float,
    args: argparse.Namespace,
    num_classes: int,
    voxel_size: float,
    truncation: float,
) -> dict:
    """Metrics against the number of frames offered (evenly spaced among the evaluated ones),
    on ``folders``; the scoring always uses every evaluated frame's depth."""
    counts = sorted(set(args.frames_study))
    per_count: dict = {}
    for folder in folders:
        sequence, layout = open_sequence(folder, args.layout, args.frame_rate)
        indices = frame_subset(len(sequence), args.max_frames)
        frames = load_frames(sequence, indices)
        gt = load_ground_truth_for(sequence, layout, frames, voxel_size, truncation)
        for n in [*(c for c in counts if c < len(indices)), len(indices)]:
            chosen = [indices[j] for j in frame_subset(len(indices), n)]
            prediction = reconstruct(sequence, pipeline, chosen, gt, period)
            per_count.setdefault(n, []).append(score(prediction, gt, frames, num_classes))
    rows: dict = {"frames": sorted(per_count), "scenes": len(folders)}
    for key in ("fscore", "l1", "depth_abs_rel", "miou"):
        rows[key] = [
            aggregate(per_count[n], num_classes).get(key, float("nan")) for n in rows["frames"]
        ]
    return rows


def plot_scenes(report: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    names = [s["name"] for s in report["scenes"]]
    fig = Figure(figsize=(max(5.0, 0.6 * len(names) + 2), 3.2))
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x - 0.2, [s["model"]["fscore"] for s in report["scenes"]], 0.4, label="default")
    if report.get("upper_bound"):
        ax.bar(
            x + 0.2,
            [s["upper_bound"]["fscore"] for s in report["scenes"]],
            0.4,
            label="fusion of GT depth",
        )
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F-score at 5 cm")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    save_figure(fig, path)


def build_pipelines(args: argparse.Namespace, config) -> tuple[list, dict]:
    """The evaluated pipelines (rows), the default first, and what the report says of them.

    Rows: ``model`` (the default pipeline of the parameters, on RGB alone); with the fusion
    pipeline ``mvs_fusion`` (fusion of predicted depth alone: the same as ``model`` as long as no
    3D refinement network is on top, so it is not run twice) and ``sensor_fusion`` (the frames'
    depth through the same reconstructor: the RGB-D path); ``atlas`` (the paper's features-only
    Atlas) where Atlas weights are given or trained ones ship.
    """
    from dataclasses import replace

    from recon_ros.core.refine_checkpoint import load_refine_net
    from recon_ros.core.semantic_net import load_semantic_net
    from recon_ros.weights import (
        WEIGHTS_DIR,
        default_depth_weights,
        default_refine_weights,
        default_semantic_weights,
        given_or_shipped,
    )

    rows: list[Pipeline] = []
    meta: dict = {"pipeline": config.pipeline}
    atlas_weights = Path(args.weights) if args.weights else None
    if atlas_weights is None and (WEIGHTS_DIR / "atlas_default.pt").is_file():
        atlas_weights = WEIGHTS_DIR / "atlas_default.pt"
    if config.pipeline == "fusion":
        depth_weights = Path(args.depth_weights) if args.depth_weights else default_depth_weights()
        if depth_weights is None:
            raise ValueError(
                "no depth network weights: pass --depth-weights (the fusion pipeline needs them "
                "for RGB input)"
            )
        depth_model, depth_metadata = load_depth_net(depth_weights, "cpu")
        meta.update(
            depth_weights=str(depth_weights),
            depth_weights_sha256=file_sha256(depth_weights),
            depth_weights_trained=depth_metadata.get("trained"),
            class_names=list(depth_model.config.class_names),
        )
        rgb_config = replace(config, depth_source="mvs")
        values = getattr(args, "refinement_values", {})
        refine_model = None
        if values.get("refinement"):
            refine_weights = (
                Path(values["refine_weights_path"])
                if values.get("refine_weights_path")
                else default_refine_weights()
            )
            if refine_weights is None:
                raise ValueError(
                    "refinement is on but no 3D refinement weights ship: pass --refine-weights"
                )
            refine_model, refine_metadata = load_refine_net(refine_weights, "cpu")
            meta.update(
                refine_weights=str(refine_weights),
                refine_weights_sha256=file_sha256(refine_weights),
                refine_weights_trained=refine_metadata.get("trained"),
            )
        semantic_model = None
        if values.get("labels_from", "combined") != "depth_network":
            semantic_weights = given_or_shipped(
                values.get("semantic_weights_path", ""), default_semantic_weights
            )
            if semantic_weights is not None:
                semantic_model, semantic_metadata = load_semantic_net(semantic_weights, "cpu")
                meta.update(
                    semantic_weights=str(semantic_weights),
                    semantic_weights_sha256=file_sha256(semantic_weights),
                    semantic_weights_trained=semantic_metadata.get("trained"),
                )
        mode = values.get("refinement_mode", "labels")
        label = (
            f"default: stereo depth fused, 3D refinement ({mode}) on top (RGB)"
            if refine_model is not None
            else "default: stereo depth fused (RGB)"
        )
        if semantic_model is not None:
            label += (
                ", labels from the semantic network and the head"
                if rgb_config.labels_from == "combined"
                else ", labels from the semantic network"
            )
        rows.append(
            Pipeline(
                "model",
                label,
                rgb_config,
                None,
                depth_model,
                refine_model=refine_model,
                refine_mode=mode,
                semantic_model=semantic_model,
            )
        )
        if semantic_model is not None and args.head_labels_row:
            rows.append(
                Pipeline(
                    "head_labels",
                    "the same, labels from the depth network's head (RGB)",
                    rgb_config,
                    None,
                    depth_model,
                    refine_model=refine_model,
                    refine_mode=mode,
                )
            )
        if refine_model is not None:
            rows.append(
                Pipeline(
                    "mvs_fusion",
                    "fusion of predicted depth alone (RGB)",
                    rgb_config,
                    None,
                    depth_model,
                    semantic_model=semantic_model,
                )
            )
        if not args.no_sensor_row:
            rows.append(
                Pipeline(
                    "sensor_fusion",
                    "sensor depth fused (RGB-D path)",
                    replace(config, depth_source="sensor"),
                    None,
                    depth_model,
                    sensor_depth=True,
                    refine_model=refine_model,  # switches itself off for sensor depth
                    semantic_model=semantic_model,
                )
            )
    if atlas_weights is not None:
        model, metadata = load_atlas_model(atlas_weights, "cpu")
        meta.update(
            weights=str(atlas_weights),
            weights_sha256=file_sha256(atlas_weights),
            weights_trained=metadata.get("trained"),
        )
        meta.setdefault("class_names", list(model.config.class_names))
        name = "model" if not rows else "atlas"
        rows.append(
            Pipeline(name, "Atlas, features only", replace(config, pipeline="atlas"), model)
        )
    if not rows:
        raise ValueError("nothing to evaluate: the atlas pipeline needs --weights")
    return rows, meta


def run(args: argparse.Namespace) -> int:
    """Entry point of ``recon-ros evaluate atlas``."""
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    config, period = reconstructor_config(args)
    pipelines, meta = build_pipelines(args, config)
    class_names = meta["class_names"]
    num_classes = len(class_names)
    voxel_size = (
        pipelines[0].model.config.voxel_size
        if pipelines[0].model is not None
        else (config.voxel_size or 0.04)
    )
    truncation = 3.0 * voxel_size
    folders = []
    for root in args.data:
        folders += list_evaluation_scenes(root)
    if args.scenes is not None:
        folders = folders[: args.scenes]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mesh_dir = out / "meshes" if args.save_meshes else None
    scenes = []
    for i, folder in enumerate(folders):
        result = evaluate_scene(
            folder,
            pipelines,
            num_classes,
            voxel_size,
            truncation,
            layout=args.layout,
            cnn_period_s=period,
            max_frames=args.max_frames,
            upper_bound=not args.no_upper_bound,
            mesh_dir=mesh_dir,
            frame_rate=args.frame_rate,
        )
        scenes.append(result.__dict__)
        m = result.model
        print(
            f"[{i + 1}/{len(folders)}] {result.name}: F-score {m['fscore']:.3f}, L1 "
            f"{m['l1']:.3f}, AbsRel {m['depth_abs_rel']:.3f}"
            + "".join(
                f"; {name} F-score {row['fscore']:.3f}"
                for name, row in result.rows.items()
                if name != "model"
            )
            + (
                f"; upper bound F-score {result.upper_bound['fscore']:.3f}"
                if result.upper_bound
                else ""
            ),
            flush=True,
        )
    report = {
        "format": "recon_ros.atlas_evaluation",
        **meta,
        "rows": {p.name: p.label for p in pipelines},
        "data": [str(d) for d in args.data],
        "voxel_size": voxel_size,
        "config": config.to_dict(),
        "cnn_period_s": period,
        "device": str(config.device),
        "model": aggregate([s["model"] for s in scenes], num_classes),
        "upper_bound": aggregate(
            [s["upper_bound"] for s in scenes if s["upper_bound"]], num_classes
        ),
        "scenes": scenes,
    }
    for pipeline in pipelines[1:]:
        report[pipeline.name] = aggregate([s["rows"][pipeline.name] for s in scenes], num_classes)
    if config.pipeline == "fusion" and "model" in report and "mvs_fusion" not in report:
        # No 3D refinement network runs on top: the default pipeline is fusion alone.
        report["mvs_fusion"] = report["model"]
    if args.frames_study:
        study_folders = folders[: args.frames_study_scenes]
        report["frames_study"] = frames_study(
            study_folders, pipelines[0], period, args, num_classes, voxel_size, truncation
        )
        study = report["frames_study"]
        plot_frames_curve(
            study["frames"],
            {"F-score": study["fscore"], "L1": study["l1"], "AbsRel": study["depth_abs_rel"]},
            out / "frames.png",
        )
    report["seconds"] = time.monotonic() - started
    text = json.dumps(report, indent=1).encode()
    atomic_write(out / "results.json", lambda f: f.write(text))
    markdown = markdown_report(report).encode()
    atomic_write(out / "results.md", lambda f: f.write(markdown))
    if "iou" in report["model"]:
        rows = {pipelines[0].label: report["model"]["iou"]}
        if "iou" in report["upper_bound"]:
            rows["fusion of GT depth"] = report["upper_bound"]["iou"]
        plot_bars(list(class_names), rows, out / "iou.png", "IoU per class")
    plot_scenes(report, out / "scenes.png")
    print(markdown.decode())
    return 0


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``atlas`` under ``recon-ros evaluate``."""
    p = subparsers.add_parser(
        "atlas",
        help="evaluate an Atlas checkpoint on scenes (Atlas Table 1 and 4 metrics)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", nargs="+", required=True, help="scene folders or dataset folders")
    p.add_argument("--out", required=True, help="output folder (results.md, results.json, PNGs)")
    p.add_argument(
        "--weights", help="Atlas checkpoint (features-only row; default: trained shipped ones)"
    )
    p.add_argument("--depth-weights", help="depth network checkpoint (default: the shipped one)")
    p.add_argument("--no-sensor-row", action="store_true", help="skip the sensor-depth row")
    p.add_argument(
        "--semantic-weights", help="semantic network checkpoint (default: the shipped one)"
    )
    p.add_argument(
        "--labels-from",
        choices=("combined", "semantic_network", "depth_network"),
        help="where keyframe labels come from (default: the parameters' 'labels_from')",
    )
    p.add_argument(
        "--head-labels-row",
        action="store_true",
        help="also run the default pipeline with the depth network's head labels (a row to "
        "compare the semantic network with)",
    )
    p.add_argument(
        "--refinement",
        choices=("on", "off"),
        help="3D refinement network on top of fusion (default: the parameters' 'refinement')",
    )
    p.add_argument(
        "--refine-weights", help="3D refinement network checkpoint (default: the shipped one)"
    )
    p.add_argument(
        "--refinement-mode",
        choices=("labels", "full"),
        help="what the refinement changes (default: the parameters' 'refinement_mode')",
    )
    p.add_argument("--layout", choices=LAYOUTS, default="auto")
    p.add_argument(
        "--frame-rate",
        type=float,
        help="frame rate (Hz) of recordings without time stamps (ScanNet, 7-Scenes; default 30)",
    )
    p.add_argument("--params-file", help="atlas_node parameter file (config/atlas.yaml)")
    p.add_argument("--device", help="cpu, cuda or auto (default: the parameters')")
    p.add_argument("--window-dims", type=int, nargs=3, metavar=("X", "Y", "Z"))
    p.add_argument("--cnn-period", type=float, help="seconds of frame time between 3D CNN runs")
    p.add_argument("--scenes", type=int, help="evaluate only the first N scenes")
    p.add_argument("--max-frames", type=int, help="offer at most N frames, evenly spaced")
    p.add_argument("--no-upper-bound", action="store_true", help="skip the fusion row")
    p.add_argument(
        "--frames-study", type=int, nargs="*", default=[], help="frame counts for Fig. 5"
    )
    p.add_argument("--frames-study-scenes", type=int, default=3)
    p.add_argument("--save-meshes", action="store_true", help="write OUT/meshes/<scene>.ply")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.set_defaults(func=run)
    return p
