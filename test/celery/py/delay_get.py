"""The seed's producer pattern in one process: `task.delay(*args, **kwargs)` for each call, then
`.get(timeout=...)` on each AsyncResult, as the original CeleryTaskManager does.
Usage: delay_get.py BROKER_URL CALLS_JSON [TIMEOUT_S]; CALLS_JSON is a list of
{"name", "args"?, "kwargs"?}. Prints one JSON list, in call order, of
{"id", "state", "result"} or {"id", "state", "raised": <type name>, "module", "args"}."""
import json
import sys

from celery_app import make_app


def main():
    app, tasks = make_app(sys.argv[1])
    calls = json.loads(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
    pending = [tasks[c['name']].delay(*c.get('args', []), **c.get('kwargs', {})) for c in calls]
    out = []
    for result in pending:
        item = {'id': result.id}
        try:
            item['result'] = result.get(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - the test checks what was raised
            item['raised'] = type(error).__name__
            item['module'] = type(error).__module__
            item['args'] = [str(a) for a in error.args]
        item['state'] = result.state
        out.append(item)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
