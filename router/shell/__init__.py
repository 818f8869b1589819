"""The router's I/O shell: the FastAPI app and its raw ASGI proxy, the aiohttp upstream client,
engine discovery, health checks and metric scrapes (asyncio tasks owned by the app's lifespan),
Prometheus metrics, API keys and rate limits, uvicorn workers. It gathers inputs and asks the
pure core (`router.routing`) which engine takes each request.
"""
