"""Checkpoints shipped with recon_ros, each with its recipe and measured metrics beside it (a
markdown file of the same stem). Loaded from these local files only, never fetched."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent

#: Trained Atlas weights, once they exist. The labelled plumbing checkpoint
#: (``atlas_untrained.pt``) is never a default: it is loaded only when named.
ATLAS_CANDIDATES = ("atlas_default.pt",)


def default_atlas_weights() -> Path:
    """The Atlas checkpoint atlas_node and the replay load for the ``atlas`` pipeline when none
    is given; raises FileNotFoundError (the node refuses to start, saying why) while no trained
    weights ship."""
    for name in ATLAS_CANDIDATES:
        path = WEIGHTS_DIR / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no trained Atlas weights ship in {WEIGHTS_DIR} (looked for {', '.join(ATLAS_CANDIDATES)})"
        "; the 'atlas' pipeline needs weights_path (atlas_untrained.pt there is the untrained "
        "plumbing checkpoint: its maps are noise). The default 'fusion' pipeline needs none."
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
