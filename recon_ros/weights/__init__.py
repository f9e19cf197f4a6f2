"""Checkpoints shipped with recon_ros, each with its recipe and measured metrics beside it (a
markdown file of the same stem). Loaded from these local files only, never fetched."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent


def first_shipped(candidates: tuple[str, ...]) -> Path | None:
    """The first of ``candidates`` (file names) present in the weights folder, or None."""
    return next((WEIGHTS_DIR / n for n in candidates if (WEIGHTS_DIR / n).is_file()), None)


def given_or_shipped(path: str, shipped):
    """The checkpoint a ``weights_path``-style parameter names (``~`` expanded), or ``shipped()``
    when it is empty (the package's own file; what ``shipped`` returns or raises when none
    ships)."""
    return Path(path).expanduser() if path else shipped()


#: Trained Atlas weights, once they exist. The labelled plumbing checkpoint
#: (``atlas_untrained.pt``) is never a default: it is loaded only when named.
ATLAS_CANDIDATES = ("atlas_default.pt",)


def default_atlas_weights() -> Path:
    """The Atlas checkpoint atlas_node and the replay load for the ``atlas`` pipeline when none
    is given; raises FileNotFoundError (the node refuses to start, saying why) while no trained
    weights ship."""
    path = first_shipped(ATLAS_CANDIDATES)
    if path is not None:
        return path
    raise FileNotFoundError(
        f"no trained Atlas weights ship in {WEIGHTS_DIR} (looked for {', '.join(ATLAS_CANDIDATES)})"
        "; the 'atlas' pipeline needs weights_path (atlas_untrained.pt there is the untrained "
        "plumbing checkpoint: its maps are noise). The default 'fusion' pipeline needs none."
    )


SUFFICIENCY_CANDIDATES = ("sufficiency_default.pt", "sufficiency_untrained.pt")


def default_sufficiency_weights() -> Path:
    """The conjugate-pair network checkpoint sufficiency_node loads when none is given."""
    path = first_shipped(SUFFICIENCY_CANDIDATES)
    if path is not None:
        return path
    raise FileNotFoundError(
        f"no sufficiency weights in {WEIGHTS_DIR} (looked for {', '.join(SUFFICIENCY_CANDIDATES)})"
    )


DEPTH_CANDIDATES = ("depth_default.pt",)


def default_depth_weights() -> Path | None:
    """The multi-view depth network's checkpoint (stereo depth and semantic labels of the fusion
    pipeline), or None when none ships."""
    return first_shipped(DEPTH_CANDIDATES)


SEMANTIC_CANDIDATES = ("semantic_default.pt",)


def default_semantic_weights() -> Path | None:
    """The semantic network's checkpoint of the fusion pipeline (labels from colour and depth),
    or None when none ships."""
    return first_shipped(SEMANTIC_CANDIDATES)


REFINE_CANDIDATES = ("refine_default.pt",)


def default_refine_weights() -> Path | None:
    """The 3D refinement network's checkpoint of the fusion pipeline, or None when none ships."""
    return first_shipped(REFINE_CANDIDATES)


R2N2_CANDIDATES = ("r2n2_default.pt",)


def default_r2n2_weights() -> Path:
    """The 3D-R2N2 checkpoint object_node and ``recon-ros reconstruct-object`` load when none is
    given; raises FileNotFoundError (saying so) while none ships."""
    path = first_shipped(R2N2_CANDIDATES)
    if path is not None:
        return path
    raise FileNotFoundError(
        f"no 3D-R2N2 weights ship in {WEIGHTS_DIR} (looked for {', '.join(R2N2_CANDIDATES)}); "
        "give weights_path (train them with `recon-ros train r2n2`)"
    )


EVERTED_CANDIDATES = ("everted_default.pt",)


def default_everted_weights() -> Path:
    """The Everted U-Net checkpoint rig_node loads when none is given; raises FileNotFoundError
    (saying so) while none ships."""
    path = first_shipped(EVERTED_CANDIDATES)
    if path is not None:
        return path
    raise FileNotFoundError(
        f"no Everted U-Net weights ship in {WEIGHTS_DIR} (looked for "
        f"{', '.join(EVERTED_CANDIDATES)}); give weights_path (train them with `recon-ros train "
        "everted-unet`)"
    )


IFNET_CANDIDATES = ("ifnet_default.pt",)


def default_ifnet_weights() -> Path:
    """The single-view depth + IF-Net checkpoint ifnet_node loads when none is given; raises
    FileNotFoundError (saying so) while none ships."""
    path = first_shipped(IFNET_CANDIDATES)
    if path is not None:
        return path
    raise FileNotFoundError(
        f"no single-view IF-Net weights ship in {WEIGHTS_DIR} (looked for "
        f"{', '.join(IFNET_CANDIDATES)}); give weights_path (train them with `recon-ros train "
        "ifnet`)"
    )
