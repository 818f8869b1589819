"""Where the engines come from: a static list (`static`) or Kubernetes pods (`kubernetes`)."""
