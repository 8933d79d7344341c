"""Revokes Celery tasks from Python: AsyncResult(id).revoke(terminate=...).
Usage: revoke.py BROKER_URL [--terminate] ID..."""
import sys

from celery_app import make_app


def main():
    app, _ = make_app(sys.argv[1])
    rest = sys.argv[2:]
    terminate = '--terminate' in rest
    for task_id in [a for a in rest if a != '--terminate']:
        app.AsyncResult(task_id).revoke(terminate=terminate)
    print('ok')


if __name__ == '__main__':
    main()
