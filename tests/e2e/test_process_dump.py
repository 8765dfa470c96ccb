"""SIGUSR1: a running web process writes where each of its tasks is waiting (app/observability/dump.py)."""

from __future__ import annotations

import asyncio

import httpx

from tests.support import LiveServer, WorkerProcess


async def test_sigusr1_logs_every_task_and_where_a_hanging_request_waits(live: LiveServer) -> None:
    # A request whose body never finishes arriving is a task the server is waiting in: the dump names it.
    _reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    try:
        writer.write(
            b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"
        )
        await writer.drain()
        async with httpx.AsyncClient(base_url=live.url) as http:  # the server is still serving
            assert (await http.get("/healthz")).status_code == 200
        await asyncio.to_thread(live.dump)
        log = live.logs()
    finally:
        writer.close()
    dump = log[log.rindex("WARNING heytoken.dump") :]
    assert "asyncio task(s)" in dump and "thread(s)" in dump
    assert ", in _body\n" in dump  # the fast path waiting for the rest of the body (app/api/fastpath.py)


def test_sigusr1_makes_a_worker_process_log_its_tasks_and_threads(worker: WorkerProcess) -> None:
    worker.dump()
    log = worker.logs()
    assert worker.proc is not None and worker.proc.poll() is None  # the main process did not die of it
    dump = log[log.rindex("WARNING heytoken.dump") :]
    assert "--- task reconciler" in dump  # the worker's event loop, read from the main thread
    assert "thread(s)" in dump and "dramatiq" in dump  # its worker threads
