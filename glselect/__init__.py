"""glselect: which columns of a table does a neural network really use?

Group-lasso feature selection for multilayer perceptrons, with an exact proximal path solver.
"""

__version__ = "0.1.0"

from glselect.api import FitResult, run  # noqa: E402
from glselect.artifacts import LoadedModel, load_model  # noqa: E402
from glselect.config import (  # noqa: E402
    DataConfig,
    ModelConfig,
    PathConfig,
    RunConfig,
    SelectionConfig,
    TrainConfig,
)
from glselect.errors import ExitCode, GlselectError  # noqa: E402

__all__ = [
    "DataConfig",
    "ExitCode",
    "FitResult",
    "GlselectError",
    "LoadedModel",
    "ModelConfig",
    "PathConfig",
    "RunConfig",
    "SelectionConfig",
    "TrainConfig",
    "__version__",
    "load_model",
    "run",
]
