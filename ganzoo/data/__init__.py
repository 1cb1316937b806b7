from .base import DataError, DataRequest

__all__ = ["DataError", "DataRequest"]
