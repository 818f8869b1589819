"""Autoscaling policies: typed per-model policies (`policy`), the HPA's decision arithmetic
(`hpa`, `activation`), the trigger queries (`queries`) and pure renderers for KEDA
ScaledObjects, TriggerAuthentication, the KEDA release values (`keda`) and the router HPA
(`router_hpa`)."""
