"""The bench's Python producer for the Celery-beside-us rows (issue 18), the latency and I/O
workloads of the aiecs rows through a Celery worker. The no-op throughput row uses
bench_producer.py. Usage:
  bench_direct.py latency URL N WARMUP  one task at a time, send to result (AsyncResult.get, which
                                        Celery's Redis backend serves from pub/sub); prints
                                        {n, samples_ms, not_completed}
  bench_direct.py io URL N MS           N "wait" tasks of MS ms each, sent at once, then the same
                                        MGET wait as bench_producer.py; prints
                                        {n, submit_s, wall_s, not_completed}"""
import json
import sys
import time

import redis

from bench_celery import FAST, make_app
from bench_producer import wait

TIMEOUT_S = 30


def args(task_name, input_data):
    return [task_name, 'bench-user', None, 0, 'bench', 'bench', input_data, {}]


def completed(value):
    return isinstance(value, dict) and value.get('status') == 'completed'


def latency(app, n, warmup):
    samples = []
    bad = 0
    for i in range(warmup + n):
        start = time.perf_counter()
        result = app.send_task(FAST, args=args('noop', {'i': i}))
        value = result.get(timeout=TIMEOUT_S, propagate=False)
        elapsed = (time.perf_counter() - start) * 1000
        if i < warmup:
            continue
        samples.append(elapsed)
        if result.status != 'SUCCESS' or not completed(value):
            bad += 1
    return {'n': n, 'samples_ms': samples, 'not_completed': bad}


def io(app, client, n, ms):
    start = time.perf_counter()
    ids = []
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            ids.append(app.send_task(FAST, args=args('wait', {'ms': ms}), producer=producer).id)
    sent = time.perf_counter()
    bad = wait(client, ids)
    end = time.perf_counter()
    return {'n': n, 'submit_s': sent - start, 'wall_s': end - start, 'not_completed': bad}


def main():
    mode, url, n, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    app = make_app(url)
    if mode == 'latency':
        out = latency(app, n, extra)
    elif mode == 'io':
        out = io(app, redis.Redis.from_url(url), n, extra)
    else:
        raise SystemExit(f'unknown mode {mode}')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
