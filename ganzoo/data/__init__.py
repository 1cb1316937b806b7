from .base import BatchDataset, DataError, DataRequest, get_items

__all__ = ["BatchDataset", "DataError", "DataRequest", "get_items"]
