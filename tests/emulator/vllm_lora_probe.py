"""vLLM 0.33's answers to a sequence of LoRA operations, with its own serving code: run by the
`.venv-engine` python (tests/emulator/test_emulator_lora_http.py), it reads
`{"base": NAME, "ops": [[op, args], ...]}` on stdin and prints one `[status, body]` per op, where
op is "load" (lora_name, lora_path, load_inplace), "unload" (lora_name), "model" (a request's
`model`, through `BaseServing._check_model`) or "models" (`show_available_models`).

vLLM's `OpenAIServingModels` and `BaseServing._check_model` run unchanged; what stands in for the
engine is `add_lora`, which raises what vLLM's worker raises for a path with no adapter
(`LoRAAdapterNotFoundError`, from `WorkerLoRAManager._load_adapter`): a path "exists" when it does
not start with "/missing". A success is `[200, text]`, a refusal `[code, ErrorResponse]`."""

import asyncio
import json
import logging
import sys
from types import SimpleNamespace

from vllm.entrypoints.openai.models.protocol import BaseModelPath
from vllm.entrypoints.openai.models.serving import OpenAIServingModels
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.engine.serving import BaseServing
from vllm.entrypoints.serve.lora.protocol import LoadLoRAAdapterRequest, UnloadLoRAAdapterRequest
from vllm.exceptions import LoRAAdapterNotFoundError

logging.disable(logging.WARNING)


class Engine:
    """The engine client's parts `OpenAIServingModels` touches."""

    model_config = SimpleNamespace(max_model_len=4096, model="base")
    renderer = None
    input_processor = None

    async def add_lora(self, request):
        if request.lora_path.startswith("/missing"):
            raise LoRAAdapterNotFoundError(request.lora_name, request.lora_path)
        return True


def answer(result):
    if isinstance(result, ErrorResponse):
        return [result.error.code, result.model_dump()]
    if result is None:
        return [200, None]
    return [200, result if isinstance(result, str) else result.model_dump()]


async def main():
    spec = json.load(sys.stdin)
    base = spec["base"]
    models = OpenAIServingModels(Engine(), [BaseModelPath(name=base, model_path=base)])
    serving = object.__new__(BaseServing)
    serving.models, serving.request_logger = models, None
    out = []
    for op, args in spec["ops"]:
        if op == "load":
            name, path, inplace = args
            req = LoadLoRAAdapterRequest(lora_name=name, lora_path=path, load_inplace=inplace)
            out.append(answer(await models.load_lora_adapter(req)))
        elif op == "unload":
            out.append(answer(await models.unload_lora_adapter(UnloadLoRAAdapterRequest(lora_name=args[0]))))
        elif op == "model":
            out.append(answer(await serving._check_model(SimpleNamespace(model=args[0]))))
        else:
            out.append(answer(await models.show_available_models()))
    print(json.dumps(out))


asyncio.run(main())
