"""Prod's shared cache server is sized for its clients: 24 8B ranks and 6 × 4 70B ranks at their
maximum replicas, each moving 32 MiB / 20 MiB chunks, so 48 ranks × 8 values × 32 MiB = 12 GiB of
client buffers beside the 186 GiB cache and the process's 2 GiB, all in the rendered pod."""

from __future__ import annotations

from pathlib import Path

from infra.config import parse_stack_config
from infra.config.sizing import cache_clients
from infra.stackfile import raw_project_config, read_stack_file

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def test_prod_clients_are_every_rank_at_max_replicas():
    """Ranks count TP (each rank its own LMCache connector); the largest value is the 8B's."""
    config = parse_stack_config(raw_project_config(read_stack_file(ROOT, "prod")))
    clients = cache_clients(config)
    assert clients.engine_ranks == 24 * 1 + 6 * 4
    assert clients.max_value_bytes == 32 * MIB
    assert clients.client_memory_gib == 12


def test_rendered_prod_pod_holds_cache_clients_and_process(run_program):
    """The prod program's cache server: maxmemory 186 GiB, maxmemory-clients 12 GiB, pod 200 GiB."""
    mocks = run_program(read_stack_file(ROOT, "prod"))
    (server,) = [r for r in mocks.of_type("kubernetes:apps/v1:Deployment")
                 if r.inputs["metadata"]["name"].endswith("lmcache")]
    (container,) = server.inputs["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[command.index("--maxmemory") + 1] == str(186 * 2**30)
    assert command[command.index("--maxmemory-clients") + 1] == str(12 * 2**30)
    assert command[command.index("--maxclients") + 1] == str(48 * 150 + 32)
    assert container["resources"]["limits"]["memory"] == "200Gi"
