"""EC2 instance catalogue: what a node pool's instance type brings (GPUs, memory, NVMe).

Figures are AWS's published specs. `gpu` names match `stack_components.capacity.GPUS`, so the
config rules and the engines' KV-capacity arithmetic use the same GPU memory.
"""

from __future__ import annotations

from dataclasses import dataclass

NODE_RESERVED_FRACTION = 0.10
"""Share of a node's RAM kept for the OS, kubelet and daemonsets (not given to engines)."""


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    """One EC2 instance type."""

    name: str
    """EC2 name, e.g. `p4de.24xlarge`."""
    vcpus: int
    """vCPUs."""
    memory_gib: int
    """RAM in GiB."""
    gpus: int = 0
    """GPUs per node (0: a CPU node)."""
    gpu: str | None = None
    """GPU model key in `stack_components.capacity.GPUS` (e.g. `A100-80GB`)."""
    gpu_memory_gb: int = 0
    """Memory of one GPU in GB."""
    nvme_gb: int = 0
    """Local NVMe instance storage in GB (0: none)."""
    efa: bool = False
    """Whether the instance has Elastic Fabric Adapter networking."""

    @property
    def usable_memory_gib(self) -> float:
        """RAM left for pods after the node's reserve."""
        return self.memory_gib * (1 - NODE_RESERVED_FRACTION)


INSTANCES: dict[str, InstanceType] = {i.name: i for i in (
    InstanceType(name="p4d.24xlarge", vcpus=96, memory_gib=1152, gpus=8, gpu="A100-40GB", gpu_memory_gb=40,
                 nvme_gb=8000, efa=True),
    InstanceType(name="p4de.24xlarge", vcpus=96, memory_gib=1152, gpus=8, gpu="A100-80GB", gpu_memory_gb=80,
                 nvme_gb=8000, efa=True),
    InstanceType(name="p5.48xlarge", vcpus=192, memory_gib=2048, gpus=8, gpu="H100-80GB", gpu_memory_gb=80,
                 nvme_gb=30400, efa=True),
    InstanceType(name="g5.xlarge", vcpus=4, memory_gib=16, gpus=1, gpu="A10G-24GB", gpu_memory_gb=24,
                 nvme_gb=250),
    InstanceType(name="g5.2xlarge", vcpus=8, memory_gib=32, gpus=1, gpu="A10G-24GB", gpu_memory_gb=24,
                 nvme_gb=450),
    InstanceType(name="g5.4xlarge", vcpus=16, memory_gib=64, gpus=1, gpu="A10G-24GB", gpu_memory_gb=24,
                 nvme_gb=600),
    InstanceType(name="g5.12xlarge", vcpus=48, memory_gib=192, gpus=4, gpu="A10G-24GB", gpu_memory_gb=24,
                 nvme_gb=3800),
    InstanceType(name="g5.48xlarge", vcpus=192, memory_gib=768, gpus=8, gpu="A10G-24GB", gpu_memory_gb=24,
                 nvme_gb=7600, efa=True),
    InstanceType(name="g6.xlarge", vcpus=4, memory_gib=16, gpus=1, gpu="L4-24GB", gpu_memory_gb=24,
                 nvme_gb=250),
    InstanceType(name="g6.2xlarge", vcpus=8, memory_gib=32, gpus=1, gpu="L4-24GB", gpu_memory_gb=24,
                 nvme_gb=450),
    InstanceType(name="m6i.large", vcpus=2, memory_gib=8),
    InstanceType(name="m6i.xlarge", vcpus=4, memory_gib=16),
    InstanceType(name="m6i.2xlarge", vcpus=8, memory_gib=32),
    InstanceType(name="m6i.4xlarge", vcpus=16, memory_gib=64),
    InstanceType(name="r6i.4xlarge", vcpus=16, memory_gib=128),
    InstanceType(name="r6i.8xlarge", vcpus=32, memory_gib=256),
)}
