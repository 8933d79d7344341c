"""The Celery app of the bench's celery section, shared by its producer and its Celery worker (as
the seed's producers and workers share theirs): the seed's task names routed to fast_tasks and
heavy_tasks with the seed's priorities, json, protocol 2. The tasks are no-ops returning the
original worker's body shape, {status: "completed", task, result}; only the Celery worker runs them
(aiecs runs its own no-op service under the same names). Task "wait" sleeps input_data["ms"] first,
as the bench's aiecs "wait" task does (the I/O workload; under gevent the sleep yields)."""
import time

from celery import Celery

FAST = 'aiecs.tasks.worker.execute_task'
HEAVY = 'aiecs.tasks.worker.execute_heavy_task'


def make_app(url):
    app = Celery('aiecs', broker=url, backend=url)
    app.conf.task_routes = {
        FAST: {'queue': 'fast_tasks', 'priority': 10},
        HEAVY: {'queue': 'heavy_tasks', 'priority': 5},
    }
    app.conf.task_serializer = 'json'
    app.conf.result_serializer = 'json'
    app.conf.accept_content = ['json']

    def noop(task_name, user_id, task_id=None, step=0, mode=None, service=None, input_data=None,
             context=None):
        if task_name == 'wait':
            time.sleep(input_data['ms'] / 1000)
        return {'status': 'completed', 'task': task_name, 'result': {'ok': True}}

    app.task(name=FAST)(noop)
    app.task(name=HEAVY)(noop)
    return app
