"""The distributed proving engine: segments of a run proven as tasks on Dask workers."""

from memjit.cluster.engine import DaskEngine

__all__ = ["DaskEngine"]
