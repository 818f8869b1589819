"""Names shared by every part of LLM Stack: components deploy them, the router reads them,
the emulator imitates them, dashboards/rules/autoscalers query them.

Never retype one of these strings elsewhere: import it from here (`import contracts as c`).
The package imports nothing outside the standard library, so every image carries it cheaply;
`contracts.promtext` reads these names back out of Prometheus text.
"""

from __future__ import annotations

from typing import Final

# --- Engine wire format (vLLM's OpenAI-compatible server) -------------------------------
PATH_CHAT: Final = "/v1/chat/completions"
PATH_COMPLETIONS: Final = "/v1/completions"
PATH_EMBEDDINGS: Final = "/v1/embeddings"
PATH_MODELS: Final = "/v1/models"
PATH_HEALTH: Final = "/health"
PATH_METRICS: Final = "/metrics"
PATH_VERSION: Final = "/version"
PATH_PING: Final = "/ping"
PATH_LOAD: Final = "/load"
PATH_LOAD_LORA: Final = "/v1/load_lora_adapter"  # vLLM, only with VLLM_ALLOW_RUNTIME_LORA_UPDATING
PATH_UNLOAD_LORA: Final = "/v1/unload_lora_adapter"
# vLLM 0.33's other model-addressed POSTs (vllm/entrypoints/*/api_router.py): the router routes
# them by `model` like the three above and leaves their fields to the engine.
PASSTHROUGH_PATHS: Final = ("/tokenize", "/detokenize", "/v1/responses", "/score", "/v1/score", "/rerank",
                            "/v1/rerank", "/v2/rerank", "/pooling", "/classify", "/v2/embed")
PROXIED_PATHS: Final = (PATH_CHAT, PATH_COMPLETIONS, PATH_EMBEDDINGS, *PASSTHROUGH_PATHS)
SSE_DONE: Final = b"data: [DONE]\n\n"

# --- Engine metrics (current vLLM names; label `model_name`) ----------------------------
ENGINE_MODEL_LABEL: Final = "model_name"
VLLM_RUNNING: Final = "vllm:num_requests_running"
VLLM_WAITING: Final = "vllm:num_requests_waiting"
VLLM_KV_USAGE: Final = "vllm:kv_cache_usage_perc"
VLLM_PREFIX_QUERIES: Final = "vllm:prefix_cache_queries_total"
VLLM_PREFIX_HITS: Final = "vllm:prefix_cache_hits_total"
VLLM_PROMPT_TOKENS: Final = "vllm:prompt_tokens_total"
# The KV connector's (LMCache's) hits, and every hit by the tier that supplied it (vLLM 0.33,
# vllm/v1/metrics/loggers.py; sources in vllm/v1/metrics/cache_hit_source.py)
VLLM_EXTERNAL_PREFIX_QUERIES: Final = "vllm:external_prefix_cache_queries_total"
VLLM_EXTERNAL_PREFIX_HITS: Final = "vllm:external_prefix_cache_hits_total"
VLLM_CACHED_BY_SOURCE: Final = "vllm:prompt_tokens_cached_by_source_total"  # label `source`
VLLM_SOURCE_DISK: Final = "disk"
VLLM_GENERATION_TOKENS: Final = "vllm:generation_tokens_total"
VLLM_TTFT: Final = "vllm:time_to_first_token_seconds"
VLLM_QUEUE_TIME: Final = "vllm:request_queue_time_seconds"  # histogram: time in WAITING (v1/metrics)
VLLM_ITL: Final = "vllm:inter_token_latency_seconds"
VLLM_E2E: Final = "vllm:e2e_request_latency_seconds"
# LoRA: a gauge set to the current time, one series per label set (vllm/v1/metrics/loggers.py)
VLLM_LORA_INFO: Final = "vllm:lora_requests_info"
VLLM_LORA_RUNNING_LABEL: Final = "running_lora_adapters"  # comma-joined adapter names
VLLM_LORA_WAITING_LABEL: Final = "waiting_lora_adapters"  # comma-joined adapter names
VLLM_LORA_MAX_LABEL: Final = "max_lora"  # the engine's --max-loras
# Older vLLM releases (read both; never export these from our own code).
VLLM_KV_USAGE_LEGACY: Final = "vllm:gpu_cache_usage_perc"
VLLM_PREFIX_QUERIES_LEGACY: Final = "vllm:gpu_prefix_cache_queries_total"
VLLM_PREFIX_HITS_LEGACY: Final = "vllm:gpu_prefix_cache_hits_total"

# LMCache's own counters, exported from the engine process (LMCache's prometheus_client
# registry: `lmcache:num_hit_tokens` / `lmcache:num_requested_tokens`, counters, so `_total`).
LMCACHE_HIT_TOKENS: Final = "lmcache:num_hit_tokens_total"
LMCACHE_REQUESTED_TOKENS: Final = "lmcache:num_requested_tokens_total"

# --- GPU exporter metrics (NVIDIA dcgm-exporter, etc/default-counters.csv) ---------------
# Labels: gpu, UUID, device, modelName, Hostname (the node), and with Kubernetes mapping the
# pod/namespace/container using the GPU.
DCGM_GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"  # percent
DCGM_FB_USED: Final = "DCGM_FI_DEV_FB_USED"  # MiB
DCGM_FB_FREE: Final = "DCGM_FI_DEV_FB_FREE"  # MiB
DCGM_POWER: Final = "DCGM_FI_DEV_POWER_USAGE"  # W
DCGM_TEMP: Final = "DCGM_FI_DEV_GPU_TEMP"  # degrees C
DCGM_XID: Final = "DCGM_FI_DEV_XID_ERRORS"  # gauge: value of the last XID error (0: none)
DCGM_NODE_LABEL: Final = "Hostname"

# --- kube-state-metrics (docs/deployment-metrics.md; labels `namespace`, `deployment`) -----
KSM_DEPLOYMENT_AVAILABLE: Final = "kube_deployment_status_replicas_available"  # STABLE gauge

# --- Prometheus scrape jobs (ServiceMonitor/PodMonitor relabel `job` to these) -----------
JOB_ENGINES: Final = "llm-stack-engines"
JOB_ROUTER: Final = "llm-stack-router"

# --- Router metrics (own prefix; never an engine name) ----------------------------------
ROUTER_PREFIX: Final = "llmstack_router_"
ROUTER_REQUESTS: Final = ROUTER_PREFIX + "requests_total"  # model, engine, status
ROUTER_TTFT: Final = ROUTER_PREFIX + "time_to_first_token_seconds"  # model, engine
ROUTER_ITL: Final = ROUTER_PREFIX + "inter_token_latency_seconds"  # model, engine
ROUTER_DECISIONS: Final = ROUTER_PREFIX + "routing_decisions_total"  # policy, outcome
ROUTER_ENGINE_HEALTHY: Final = ROUTER_PREFIX + "engine_healthy"  # engine
ROUTER_IN_FLIGHT: Final = ROUTER_PREFIX + "in_flight_requests"  # engine
ROUTER_RETRIES: Final = ROUTER_PREFIX + "upstream_retries_total"  # engine
ROUTER_STREAM_ERRORS: Final = ROUTER_PREFIX + "stream_errors_total"  # engine
ROUTER_HELD: Final = ROUTER_PREFIX + "held_requests"  # model: requests waiting for an engine
ROUTER_HOLD_OUTCOMES: Final = ROUTER_PREFIX + "hold_outcomes_total"  # model, outcome
ROUTER_TASK_RESTARTS: Final = ROUTER_PREFIX + "background_task_restarts_total"  # task
ROUTER_DEADLINE_MISSES: Final = ROUTER_PREFIX + "deadline_misses_total"  # engine, deadline
ROUTER_EJECTIONS: Final = ROUTER_PREFIX + "engine_ejections_total"  # engine, reason
ROUTER_MIGRATIONS: Final = ROUTER_PREFIX + "migrations_total"  # model, outcome
# Each engine's KV-event stream (issue 19; states in `contracts.kv_events.FEED_STATES`): 1 for the
# engine's current state, 0 for the others; batches applied; gaps by outcome (replayed, lost).
ROUTER_KV_EVENTS_STATE: Final = ROUTER_PREFIX + "kv_events_state"  # engine, state
ROUTER_KV_EVENTS_BATCHES: Final = ROUTER_PREFIX + "kv_events_batches_total"  # engine
ROUTER_KV_EVENTS_GAPS: Final = ROUTER_PREFIX + "kv_events_gaps_total"  # engine, outcome
ROUTER_KV_PREDICTED: Final = ROUTER_PREFIX + "kv_predicted_tokens_total"  # engine, tier, mode
ROUTER_KV_FALLBACKS: Final = ROUTER_PREFIX + "kv_fallbacks_total"  # engine, reason
ROUTER_KV_TOKENIZE: Final = ROUTER_PREFIX + "kv_tokenize_total"  # outcome
# Mirrors of each engine's own figures, as the router last scraped them (label `engine`), so a
# client that can reach only the router (the post-deploy benchmark Job) still sees them.
ROUTER_ENGINE_KV_USAGE: Final = ROUTER_PREFIX + "engine_kv_cache_usage_ratio"
ROUTER_ENGINE_PREFIX_QUERIES: Final = ROUTER_PREFIX + "engine_prefix_cache_queries_total"
ROUTER_ENGINE_PREFIX_HITS: Final = ROUTER_PREFIX + "engine_prefix_cache_hits_total"
OUTCOME_CACHE_HIT: Final = "cache_hit"
OUTCOME_LOAD_FALLBACK: Final = "load_fallback"
OUTCOME_NEW: Final = "new"

# --- Engine discovery (pod labels set by stack_components, selected by the router) -------
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_MODEL: Final = "llmstack.io/model"  # the served model name (sanitised for a label value)
LABEL_ROLE: Final = "llmstack.io/role"
PART_OF: Final = "llm-stack"
ROLE_ENGINE: Final = "engine"
ROLE_ROUTER: Final = "router"
ROLE_CACHE_SERVER: Final = "cache-server"
ROLE_BENCHMARK: Final = "benchmark"
# Annotations on engine pods the router reads to learn an engine's cache capacity.
ANNOTATION_GPU_CACHE_TOKENS: Final = "llmstack.io/gpu-cache-tokens"
ANNOTATION_CPU_CACHE_TOKENS: Final = "llmstack.io/cpu-cache-tokens"
ANNOTATION_SERVED_MODEL: Final = "llmstack.io/served-model-name"
ENGINE_PORT: Final = 8000
ROUTER_PORT: Final = 8080

# --- Client headers ---------------------------------------------------------------------
HEADER_USER_ID: Final = "x-user-id"
HEADER_PRIORITY: Final = "x-priority"  # a hold-queue priority class (router.settings.QueueSettings)
HEADER_REQUEST_ID: Final = "x-request-id"  # vLLM puts it in the response id; the emulator journals by it
