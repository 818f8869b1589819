"""How vLLM 0.33 reads `/tokenize` bodies, with its own request models: run by the `.venv-engine`
python (tests/router/shell/test_tokenize.py), it reads a JSON list of bodies on stdin and prints
one JSON line: per body, the request class FastAPI parses it into (`TokenizeRequest`, the union
the route declares, vllm/entrypoints/serve/tokenize/api_router.py) and the fields that decide the
rendering; then the dump of a `TokenizeResponse` (what the route answers)."""

import json
import sys

from pydantic import TypeAdapter
from vllm.entrypoints.serve.tokenize.protocol import TokenizeRequest, TokenizeResponse

FIELDS = ("model", "prompt", "add_special_tokens", "add_generation_prompt", "continue_final_message",
          "chat_template", "chat_template_kwargs")

adapter = TypeAdapter(TokenizeRequest)
out = []
for body in json.loads(sys.stdin.read()):
    request = adapter.validate_python(body)
    fields = {name: getattr(request, name) for name in FIELDS if hasattr(request, name)}
    if hasattr(request, "messages"):
        fields["messages"] = len(request.messages)
        fields["tools"] = None if request.tools is None else len(request.tools)
    out.append([type(request).__name__, fields])
answer = TokenizeResponse(count=3, max_model_len=4096, tokens=[7, 8, 9]).model_dump()
print(json.dumps({"requests": out, "answer": answer}))
