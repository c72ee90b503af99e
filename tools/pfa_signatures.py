"""Regenerate portable/formats/pfa/signatures.json from the PFA specification's libfcns.xml.

    python tools/pfa_signatures.py ../shared/pfa/libfcns.xml

The JSON keeps, per library function, its signatures (parameter patterns and return pattern, in the compact
form portable/formats/pfa/sigs.py reads), its error codes, and whether it is nondeterministic.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def pattern(children: list[ET.Element], text: str | None) -> object:
    kids = [c for c in children]
    if not kids:
        return (text or "").strip()
    if len(kids) > 1 and all(k.tag == "union" for k in kids):
        return {"union": [pattern(list(k), k.text) for k in kids]}
    k = kids[0]
    if k.tag in ("array", "map"):
        return {k.tag: pattern(list(k), k.text)}
    if k.tag == "union":
        return {"union": [pattern(list(k), k.text)]}
    if k.tag == "any":
        of = k.get("of")
        return {"any": k.get("label"), "of": [s.strip() for s in of.split(",")] if of else None}
    if k.tag == "ref":
        return {"ref": k.get("label")}
    if k.tag in ("record", "enum", "fixed"):
        out: dict = {k.tag: k.get("label")}
        if k.tag == "record":
            out["fields"] = {f.get("name"): pattern(list(f), f.text) for f in k.findall("field")}
        return out
    if k.tag == "function":
        pars = [pattern(list(p), p.text) for p in k.findall("par")]
        r = k.find("ret")
        return {"fn": pars, "ret": pattern(list(r), r.text)}
    raise ValueError(k.tag)


def main(src: str) -> None:
    root = ET.parse(src).getroot()
    out = {}
    for fcn in root.iter("fcn"):
        sigs = []
        for sig in fcn.findall("sig"):
            pars = [[p.get("name"), pattern(list(p), p.text)] for p in sig.findall("par")]
            r = sig.find("ret")
            sigs.append({"params": pars, "ret": pattern(list(r), r.text),
                         **({"deprecated": sig.get("contingency")} if sig.get("contingency") else {})})
        doc = fcn.find("doc")
        errors = sorted({int(e.get("code")) for e in doc.iter("error")}) if doc is not None else []
        nd = doc.find("nondeterministic") if doc is not None else None
        out[fcn.get("name")] = {"sigs": sigs, "errors": errors,
                                **({"nondeterministic": nd.get("type")} if nd is not None else {})}
    dest = Path(__file__).resolve().parents[1] / "portable" / "formats" / "pfa" / "signatures.json"
    dest.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(out)} functions -> {dest}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/pfa/libfcns.xml")
