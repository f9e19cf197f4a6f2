"""Checkpoints shipped with recon_ros, each with its recipe and measured metrics beside it (a
markdown file of the same stem). Loaded from these local files only, never fetched."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent

#: In order of preference: trained weights once they exist, else the labelled plumbing checkpoint.
ATLAS_CANDIDATES = ("atlas_default.pt", "atlas_untrained.pt")


def default_atlas_weights() -> Path:
    """The Atlas checkpoint atlas_node and the replay load when none is given."""
    for name in ATLAS_CANDIDATES:
        path = WEIGHTS_DIR / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no Atlas weights in {WEIGHTS_DIR} (looked for {', '.join(ATLAS_CANDIDATES)})"
    )


SUFFICIENCY_CANDIDATES = ("sufficiency_default.pt", "sufficiency_untrained.pt")


def default_sufficiency_weights() -> Path:
    """The conjugate-pair network checkpoint sufficiency_node loads when none is given."""
    for name in SUFFICIENCY_CANDIDATES:
        path = WEIGHTS_DIR / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no sufficiency weights in {WEIGHTS_DIR} (looked for {', '.join(SUFFICIENCY_CANDIDATES)})"
    )


DEPTH_CANDIDATES = ("depth_default.pt",)


def default_depth_weights() -> Path | None:
    """The multi-view depth network's checkpoint (stereo depth and semantic labels of the fusion
    pipeline), or None when none ships."""
    for name in DEPTH_CANDIDATES:
        path = WEIGHTS_DIR / name
        if path.is_file():
            return path
    return None


REFINE_CANDIDATES = ("refine_default.pt",)


def default_refine_weights() -> Path | None:
    """The 3D refinement network's checkpoint of the fusion pipeline, or None when none ships."""
    for name in REFINE_CANDIDATES:
        path = WEIGHTS_DIR / name
        if path.is_file():
            return path
    return None
