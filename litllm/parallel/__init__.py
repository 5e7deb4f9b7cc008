"""Parallelism beyond one data-parallel dimension: ``MeshStrategy`` (FSDP2 x tensor parallelism on a 2-D
device mesh, or FSDP2 x pipeline parallelism on a 3-D one), the tensor-parallel plan of the backbone
(``tensor``), its pipeline stages and schedules (``pipeline``), and the short strategy names of the
command line."""

from litllm.parallel.names import register_strategies
from litllm.parallel.strategy import MeshStrategy

__all__ = ["MeshStrategy", "register_strategies"]
