"""Parallelism beyond one data-parallel dimension: ``MeshStrategy`` (FSDP2 x tensor parallelism on a 2-D
device mesh), the tensor-parallel plan of the backbone, and the short strategy names of the command line."""

from litllm.parallel.names import register_strategies
from litllm.parallel.strategy import MeshStrategy

__all__ = ["MeshStrategy", "register_strategies"]
