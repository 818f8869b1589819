"""*GPUs*: utilisation, memory, power, temperature and XID errors from dcgm-exporter, per node
(`Hostname`) and per engine pod (`pod`: dcgm-exporter maps each GPU to the pod using it)."""

from __future__ import annotations

import contracts as c
from stack_components.monitoring.dashboards.spec import DashboardSpec, PanelSpec, panel

UID = "llm-stack-gpus"
NODE = c.DCGM_NODE_LABEL
IN_POD = '{pod!=""}'


def _node_and_pod(title: str, unit: str, agg: str, metric: str) -> PanelSpec:
    """One panel, one series per node and one per engine pod."""
    return panel(title, unit,
                 (f"{agg} by ({NODE}) ({metric})", f"node {{{{{NODE}}}}}"),
                 (f"{agg} by (pod) ({metric}{IN_POD})", "pod {{pod}}"))


def _memory_share() -> str:
    used, free = (f"sum by (pod) ({m}{IN_POD})" for m in (c.DCGM_FB_USED, c.DCGM_FB_FREE))
    return f"{used} / ({used} + {free})"


def dashboard() -> DashboardSpec:
    """The GPU dashboard."""
    return DashboardSpec(uid=UID, title="LLM Stack / GPUs", panels=(
        _node_and_pod("GPU utilisation (mean)", "percent", "avg", c.DCGM_GPU_UTIL),
        _node_and_pod("GPU memory used", "decmbytes", "sum", c.DCGM_FB_USED),
        panel("GPU memory share used per engine pod", "percentunit", (_memory_share(), "{{pod}}")),
        _node_and_pod("Power", "watt", "sum", c.DCGM_POWER),
        _node_and_pod("Hottest GPU", "celsius", "max", c.DCGM_TEMP),
        panel("Last XID error per GPU", "short",
              (f"max by ({NODE}, gpu, pod) ({c.DCGM_XID})", f"{{{{{NODE}}}}} gpu {{{{gpu}}}} {{{{pod}}}}")),
    ))
