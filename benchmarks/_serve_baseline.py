"""The service a user would write by hand instead of `portable serve`: Starlette + onnxruntime, nothing else.

Run as `python benchmarks/_serve_baseline.py MODEL.onnx PORT`; bench_serve.py compares it with portable's server.
It is written the way the Starlette and onnxruntime documentation show it: `await request.json()`, one
`InferenceSession` with default options, `JSONResponse` of `.tolist()`. It validates nothing and keeps no metrics.
"""
from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
outputs = [o.name for o in session.get_outputs()]


async def predict(request):
    body = await request.json()
    X = np.asarray(body["X"], dtype=np.float32)
    results = session.run(outputs, {"X": X})
    return JSONResponse({"outputs": {n: r.tolist() for n, r in zip(outputs, results)}})


async def ready(request):
    return JSONResponse({"status": "ready"})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ready", ready)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
