"""lakeio: name a dataset, get it from wherever it lives, with the engine that fits.

``import lakeio`` is light: pyspark and pandas load only when a read or write needs them.

Example:
    >>> import lakeio
    >>> lake = lakeio.Catalog.load("conf", env="sample")
    >>> lake.read("flights", where="month = 1", columns=["carrier"]).to_pandas().shape
    (224, 1)
"""

from lakeio.catalog import Catalog
from lakeio.dataset import Dataset
from lakeio.errors import (
    ConcurrentWriteError,
    ConfigError,
    DataQualityError,
    EngineUnavailableError,
    InvalidArgumentError,
    LakeioError,
    ResourceNotFoundError,
    ResultTooLargeError,
    SchemaMismatchError,
    StorageError,
)
from lakeio.frame import LakeFrame
from lakeio.metrics import IORecord

__version__ = "0.1.0"

__all__ = [
    "Catalog",
    "ConcurrentWriteError",
    "ConfigError",
    "Dataset",
    "DataQualityError",
    "EngineUnavailableError",
    "IORecord",
    "InvalidArgumentError",
    "LakeFrame",
    "LakeioError",
    "ResourceNotFoundError",
    "ResultTooLargeError",
    "SchemaMismatchError",
    "StorageError",
    "__version__",
]
