"""The stack on this machine, with no cloud: `llm-stack demo` (`make demo`: emulated engines, the
router, Prometheus and the benchmark sweep over routing policies) and `llm-stack autoscale` (the
autoscaling loop closed locally), and the child-process helper both run their parts with."""
