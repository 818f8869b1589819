"""vLLM 0.33's verdict on request bodies, with its own code: run by the `.venv-engine` python
(tests/emulator/test_emulator_vllm_models.py), it reads `[[kind, body], ...]` as JSON on stdin
and prints `[[status, param], ...]`: what vLLM's request models (pydantic) and its
`SamplingParams` checks say of each body before the model is involved."""

import json
import logging
import sys

import pydantic
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.completion.protocol import CompletionRequest

logging.disable(logging.WARNING)
out = []
for kind, body in json.load(sys.stdin):
    cls = ChatCompletionRequest if kind == "chat" else CompletionRequest
    try:
        req = cls.model_validate(body)
        # the budget vLLM's serving code computes: the request's (chat: max_completion_tokens or
        # max_tokens), else the rest of the context, for which 256 stands (the emulator's default)
        asked = getattr(req, "max_completion_tokens", None) or req.max_tokens
        req.to_sampling_params(256 if asked is None else asked, {})
        out.append([200, None])
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        out.append([400, str(err["loc"][0]) if err.get("loc") else None])
    except Exception as exc:  # VLLMValidationError, ValueError
        out.append([400, getattr(exc, "parameter", None)])
print(json.dumps(out))
