"""Reads a Celery result as a Python producer does, through AsyncResult on the Redis backend.

usage: async_result.py get <backend-url> <celery-id> <timeout-s>
       async_result.py state <backend-url> <celery-id>
Prints one JSON line: for get, {"result": ...} or {"raised": <type name>, "module": ..., "args": [...]};
for state, {"state": ..., "info": ..., "ready": ...}.
"""
import json
import sys

from celery import Celery
from celery.result import AsyncResult


def jsonable(value):
    if isinstance(value, BaseException):
        return {"raised": type(value).__name__, "args": [str(a) for a in value.args]}
    return value


def main():
    op, backend, task_id = sys.argv[1], sys.argv[2], sys.argv[3]
    app = Celery("aiecs", broker=backend, backend=backend)
    result = AsyncResult(task_id, app=app)
    if op == "get":
        try:
            value = result.get(timeout=float(sys.argv[4]))
            out = {"result": value}
        except Exception as error:  # noqa: BLE001 - the test checks what was raised
            out = {"raised": type(error).__name__, "module": type(error).__module__, "args": [str(a) for a in error.args]}
    else:
        out = {"state": result.state, "info": jsonable(result.info), "ready": result.ready()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
