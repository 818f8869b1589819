"""The autoscaling loop closed on this machine: emulated engines behind the real router, a
real Prometheus scraping them, and a local scaler applying the rendered trigger query and the
HPA arithmetic of `policies.autoscaling` (time-scaled), driven by a load ramp up and down."""
