"""The engines' own KV-cache state, from vLLM's KV events (issue 19): the wire decoder
(`events`), stream sequence bookkeeping (`sequence`), the router's token-derived block keys
(`keys`) and the per-engine, per-tier residency index they feed (`residency`). Pure: the
subscriber that reads the ZMQ sockets belongs to the shell; routing does not use the index yet."""
