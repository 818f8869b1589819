"""The engines' own KV-cache state, from vLLM's KV events (issue 19): the wire decoder
(`events`), stream sequence bookkeeping (`sequence`). Pure: the subscriber that reads the ZMQ
sockets lives in the shell."""
