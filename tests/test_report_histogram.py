"""The report's error distribution (`decade_counts`) counts rows as numpy's histogram does."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from portable.equivalence.report import HIST_EDGES, decade_counts

# severities as the comparison makes them (errors over tolerances, >= 0, inf where a value is missing), plus the
# edges themselves, their neighbours, NaN and negative values
_EDGE_VALUES = [e for x in HIST_EDGES for e in (x, np.nextafter(x, -np.inf), np.nextafter(x, np.inf))]
_VALUES = st.one_of(st.floats(min_value=0, allow_infinity=True), st.just(float("nan")), st.just(-np.inf),
                    st.floats(min_value=-1e300, max_value=1e300), st.sampled_from(_EDGE_VALUES))


def _numpy_counts(sev: np.ndarray) -> list[int]:
    """np.histogram over the decades, NaN read as +inf and everything clipped to [0, 1e300]."""
    clipped = np.clip(np.nan_to_num(sev, nan=np.inf, posinf=1e300), 0, 1e300)
    return np.histogram(clipped, bins=HIST_EDGES)[0].tolist()


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=_VALUES))
def test_decade_counts_match_numpy_histogram(sev):
    assert decade_counts(sev) == _numpy_counts(sev)
    with np.errstate(over="ignore"):  # float32 values beyond its range are inf
        narrow = sev.astype(np.float32)
    assert decade_counts(narrow) == _numpy_counts(narrow.astype(np.float64))


def test_decade_counts_of_nothing_is_none():
    assert decade_counts(np.zeros(0)) is None
    assert decade_counts([]) is None
