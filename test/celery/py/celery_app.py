"""The Celery app the seed's producers use, pointed at the broker given: the seed's two task
names routed to fast_tasks and heavy_tasks with the seed's route priorities (10, 5), json,
task protocol 2 (the default). The tasks are stubs with the seed's signature (defaults where the seed's callers may omit), so producers can
call .delay() / .apply_async() on them; their bodies never run here (aiecs runs them)."""
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

    @app.task(name=FAST, bind=True)
    def execute_task(self, task_name, user_id, task_id=None, step=0, mode=None, service=None,
                     input_data=None, context=None):
        raise RuntimeError('runs in aiecs')

    @app.task(name=HEAVY, bind=True)
    def execute_heavy_task(self, task_name, user_id, task_id=None, step=0, mode=None, service=None,
                           input_data=None, context=None):
        raise RuntimeError('runs in aiecs')

    return app, {FAST: execute_task, HEAVY: execute_heavy_task}
