"""The Celery worker side of the bench: `python3 -m celery -A bench_worker worker ...` with
AIECS_BENCH_CELERY_URL set. Prints one ready line on its real stdout when the worker consumes
(Celery redirects print() to its logger, and its own ready line is INFO, below -l warning)."""
import os
import sys

from celery.signals import worker_ready

from bench_celery import make_app

app = make_app(os.environ['AIECS_BENCH_CELERY_URL'])


@worker_ready.connect
def _ready(**_):
    sys.__stdout__.write('celery bench worker ready\n')
    sys.__stdout__.flush()
