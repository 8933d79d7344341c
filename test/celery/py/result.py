"""Reads Celery results as a producer does. Usage: result.py BROKER_URL ID...
Prints one JSON list of {id, state, ready, exc_type?, result?} (AsyncResult.state / .ready() /
.get(propagate=True) without waiting: only for ready results)."""
import json
import sys

from celery_app import make_app


def main():
    app, _ = make_app(sys.argv[1])
    out = []
    for task_id in sys.argv[2:]:
        r = app.AsyncResult(task_id)
        item = {'id': task_id, 'state': r.state, 'ready': r.ready()}
        if r.ready():
            try:
                item['result'] = r.get(timeout=5)
            except Exception as error:  # the remote error, recreated by Celery
                item['exc_type'] = type(error).__name__
                item['exc_message'] = str(error)
        out.append(item)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
