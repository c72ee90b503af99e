"""The checker's memory on long text documents: runtimes lay tokens out densely (portable's char n-gram graph holds
[rows, words, characters] strings), so a check runs text models on row chunks whose rows x longest text is bounded
(`equivalence.TEXT_CHUNK`). Before, a check of a char_wb n-gram pipeline on its vectorizer hints' long documents
peaked at 7.5 GB and onnxruntime failed with std::bad_alloc under a 4 GB address-space limit."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    sys.path.insert(0, sys.argv[1])
    from tests import pipelines as P
    import portable
    est, X, data = P.text_char_wb_ngrams()
    art = portable.convert(est, to="onnx", dtype="float32", check=False)
    report = portable.check(est, art, data=data, samples=1000)
    probs = art.run({"review": data[["review"]].to_numpy().astype(str)})["probabilities"]
    print(json.dumps({"equivalent": report.equivalent, "rows": report.samples,
                      "max_diff": float(abs(probs - est.predict_proba(data)).max())}))
""")


def test_a_char_ngram_check_on_long_documents_fits_in_4_gb():
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["equivalent"], out
    assert out["max_diff"] < 1e-4, out  # the artifact against scikit-learn's own predict_proba
