"""The bench's Python producer. Usage: bench_producer.py URL N [WARMUP]
Sends WARMUP (unmeasured) then N `aiecs.tasks.worker.execute_task` messages through one Celery
producer as fast as it can, then waits until every result is ready in the Redis result backend,
reading `celery-task-meta-<id>` with MGET, oldest first, 500 at a time: the same wait for an aiecs
worker and a Celery worker (AsyncResult.get per id costs a round trip each, and ResultSet.join
polls every 0.5 s). Prints one JSON line: {n, submit_s, total_s, tasks_per_s, not_completed}."""
import json
import sys
import time

import redis

from bench_celery import FAST, make_app

READY = {'SUCCESS', 'FAILURE', 'REVOKED'}
CHUNK = 500
TIMEOUT_S = 300


def send(app, n, tag):
    ids = []
    with app.producer_or_acquire() as producer:
        for i in range(n):
            args = ['noop', 'bench-user', None, 0, 'bench', 'bench', {'i': i, 'round': tag}, {}]
            ids.append(app.send_task(FAST, args=args, producer=producer).id)
    return ids


def wait(client, ids):
    """Waits until every id's result is ready; returns how many are not a completed body."""
    pending = list(ids)
    bad = 0
    deadline = time.monotonic() + TIMEOUT_S
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f'{len(pending)} of {len(ids)} results not ready after {TIMEOUT_S} s')
        head, rest = pending[:CHUNK], pending[CHUNK:]
        values = client.mget([f'celery-task-meta-{i}' for i in head])
        still = []
        for task_id, raw in zip(head, values):
            meta = json.loads(raw) if raw is not None else None
            if meta is None or meta.get('status') not in READY:
                still.append(task_id)
                continue
            result = meta.get('result')
            if meta['status'] != 'SUCCESS' or not isinstance(result, dict) or result.get('status') != 'completed':
                bad += 1
        if len(still) == len(head):
            time.sleep(0.005)
        pending = still + rest
    return bad


def main():
    url, n = sys.argv[1], int(sys.argv[2])
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    app = make_app(url)
    client = redis.Redis.from_url(url)
    if warmup:
        wait(client, send(app, warmup, 'warmup'))
    start = time.perf_counter()
    ids = send(app, n, 'measured')
    sent = time.perf_counter()
    bad = wait(client, ids)
    end = time.perf_counter()
    print(json.dumps({
        'n': n,
        'submit_s': sent - start,
        'total_s': end - start,
        'tasks_per_s': n / (end - start),
        'not_completed': bad,
    }))


if __name__ == '__main__':
    main()
