"""PyTorch, for the parts of dlas_fast that need it (the datasets, the DataLoader, the
samplers): the light install (``pip install .``) leaves it out, and extraction never
imports it."""

#: What to run when PyTorch is missing.
INSTALL = "pip install 'dlas_fast[torch]' (or pip install torch)"


def require():
    """The ``torch`` module, or an ImportError that names the install command."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"dlas_fast's datasets and loaders need PyTorch, which is not installed: "
            f"{INSTALL}. Extraction (dlas-fast extract, dlas_fast.extract) works without it."
        ) from e
    return torch
