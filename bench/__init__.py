"""Load and latency benchmarks of the gateway against a local mock upstream (`python -m bench`).

Parts, each runnable on its own:
    bench.mock       a fast mock OpenAI upstream (chat, SSE streams, embeddings, images, videos)
    bench.loadgen    an HTTP/1.1 keep-alive load generator (raw asyncio + httptools on uvloop)
    bench.reference  a bare pass-through proxy: Litestar + the gateway's upstream client, no features
    bench.clients    upstream HTTP clients compared against the mock (the claim behind app/core/http.py)
    bench.driver     runs the scenarios against direct / reference / gateway and prints the table
"""
