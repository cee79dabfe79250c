"""glselect: which columns of a table does a neural network really use?

Group-lasso feature selection for multilayer perceptrons, with an exact proximal path solver.
"""

__version__ = "0.1.0"

from glselect.pipeline import FitResult, run  # noqa: E402
from glselect.outputs.artifacts import LoadedModel, load_model  # noqa: E402
from glselect.config import (  # noqa: E402
    DataConfig,
    ModelConfig,
    PathConfig,
    RunConfig,
    SelectionConfig,
    TrainConfig,
)
from glselect.errors import ExitCode, GlselectError  # noqa: E402



def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attribute
    # scikit-learn is an optional extra: import the wrapper only when it is asked for
    if name in ("GroupLassoSelector", "load"):
        from glselect import sklearn as wrapper

        return getattr(wrapper, name)
    raise AttributeError(f"module 'glselect' has no attribute {name!r}")


__all__ = [
    "DataConfig",
    "ExitCode",
    "FitResult",
    "GlselectError",
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
