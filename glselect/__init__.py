"""glselect: which columns of a table does a neural network really use?

Group-lasso feature selection for multilayer perceptrons, with an exact proximal path solver.
"""

__version__ = "0.1.0"

from glselect.errors import ExitCode, GlselectError, GlselectWarning

# where each lazily imported name lives: torch (seconds to load) and scikit-learn (an optional extra)
# load only when one of these is used, so 'glselect --version' and '--help' answer at once
_LAZY = {
    **dict.fromkeys(("DataConfig", "ModelConfig", "PathConfig", "RunConfig", "SelectionConfig", "TrainConfig"), "glselect.config"),
    "FitResult": "glselect.pipeline",
    "run": "glselect.pipeline",
    "LoadedModel": "glselect.outputs.load",
    "load_model": "glselect.outputs.load",
    "GroupLassoSelector": "glselect.sklearn",
    "load": "glselect.sklearn",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'glselect' has no attribute {name!r}")


__all__ = [
    "DataConfig",
    "ExitCode",
    "FitResult",
    "GlselectError",
    "GlselectWarning",
    "GroupLassoSelector",
    "LoadedModel",
    "ModelConfig",
    "PathConfig",
    "RunConfig",
    "SelectionConfig",
    "TrainConfig",
    "__version__",
    "load",
    "load_model",
    "run",
]
