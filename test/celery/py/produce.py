"""Sends Celery calls as the seed's producers do. Usage: produce.py BROKER_URL [CALLS_JSON]
(CALLS_JSON, else stdin): a list of {"name", "args"?, "kwargs"?, "via": "delay"|"send_task"|"apply_async",
"countdown"?, "expires"?, "time_limit"?, "soft_time_limit"?, "priority"?, "task_id"?, "retries"?}
or {"repeat": N, "call": {...}} for N copies. Prints the Celery ids, one JSON list."""
import json
import sys

from celery_app import make_app

OPTIONS = ('countdown', 'expires', 'time_limit', 'soft_time_limit', 'priority', 'task_id', 'retries')


def main():
    app, tasks = make_app(sys.argv[1])
    spec = json.loads(sys.argv[2]) if len(sys.argv) > 2 else json.load(sys.stdin)
    calls = []
    for item in spec:
        if 'repeat' in item:
            calls.extend([item['call']] * item['repeat'])
        else:
            calls.append(item)
    ids = []
    with app.producer_or_acquire() as producer:
        for call in calls:
            args = call.get('args', [])
            kwargs = call.get('kwargs', {})
            options = {k: call[k] for k in OPTIONS if k in call}
            via = call.get('via', 'send_task')
            if via == 'delay':
                result = tasks[call['name']].delay(*args, **kwargs)
            elif via == 'apply_async':
                result = tasks[call['name']].apply_async(args, kwargs, producer=producer, **options)
            else:
                result = app.send_task(call['name'], args=args, kwargs=kwargs, producer=producer, **options)
            ids.append(result.id)
    print(json.dumps(ids))


if __name__ == '__main__':
    main()
