"""*GPUs*: utilisation, memory, power, temperature and XID errors from dcgm-exporter, per node
(`Hostname`) and per engine pod (`pod`: dcgm-exporter maps each GPU to the pod using it)."""

from __future__ import annotations

from router import contracts as c
from stack_components.monitoring.dashboards.spec import DashboardSpec, panel

UID = "llm-stack-gpus"
NODE = c.DCGM_NODE_LABEL


def dashboard() -> DashboardSpec:
    """The GPU dashboard."""
    in_pod = '{pod!=""}'
    return DashboardSpec(uid=UID, title="LLM Stack / GPUs", panels=(
        panel("GPU utilisation per node", "percent",
              (f"avg by ({NODE}) ({c.DCGM_GPU_UTIL})", f"{{{{{NODE}}}}}")),
        panel("GPU utilisation per engine pod", "percent",
              (f"avg by (pod) ({c.DCGM_GPU_UTIL}{in_pod})", "{{pod}}")),
        panel("GPU memory used per node", "decmbytes",
              (f"sum by ({NODE}) ({c.DCGM_FB_USED})", f"{{{{{NODE}}}}}")),
        panel("GPU memory used per engine pod", "percentunit",
              (f"sum by (pod) ({c.DCGM_FB_USED}{in_pod}) / (sum by (pod) ({c.DCGM_FB_USED}{in_pod}) "
               f"+ sum by (pod) ({c.DCGM_FB_FREE}{in_pod}))", "{{pod}}")),
        panel("Power per node", "watt", (f"sum by ({NODE}) ({c.DCGM_POWER})", f"{{{{{NODE}}}}}")),
        panel("Hottest GPU per node", "celsius", (f"max by ({NODE}) ({c.DCGM_TEMP})", f"{{{{{NODE}}}}}")),
        panel("Last XID error per GPU", "short",
              (f"max by ({NODE}, gpu) ({c.DCGM_XID})", f"{{{{{NODE}}}}} gpu {{{{gpu}}}}")),
    ))
