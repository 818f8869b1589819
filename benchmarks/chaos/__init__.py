"""Issue 18's chaos benchmark: emulated engines, two router replicas and a steady streaming load
through scale from zero, scale-in, rollouts of engines and routers, an engine killed, hung or
stalled; every request judged against its uninterrupted twin (`tally`, `workload`). What the
harness models of Kubernetes and the NLB is in `cluster` and `scenarios`."""
