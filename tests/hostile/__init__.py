"""Hostile pickles, joblib and skops files for the safety tests (built in the tests, never shipped)."""
