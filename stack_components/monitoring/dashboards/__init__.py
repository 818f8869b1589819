"""The stack's Grafana dashboards: serving overview, GPUs and capacity, as plain specs
(`spec.py`) built into Grafana JSON with grafana-foundation-sdk (`build.py`)."""
