"""Issue 19's proof: the `prefix` policy on its own estimate (`approximate`) and on the engines'
KV events (`events`), over emulated engines publishing their real cache on ZMQ, on multi-round
QA: prediction accuracy, an engine restart, a misconfigured capacity, a cold-joining replica,
lost and reordered events, router CPU per request and memory after 1M distinct prompts.

`plan` sizes everything (pure), `cluster` starts engines and routers on loopback, `client`
runs the conversations and attributes each routing decision, `phases` are the runs of one mode,
`figures` turns records into figures and verdicts (pure), `memory` measures the pure structures
in a process of their own, `run` puts it together."""
