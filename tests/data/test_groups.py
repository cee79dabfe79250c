import numpy as np
import pytest
import torch

from glselect.data.groups import build_group_index
from glselect.errors import GlselectError
from glselect.model.objective import make_penalty

COLUMNS = ["age", "city", "x", "y"]


def test_unmapped_columns_are_their_own_groups_and_encoded_parts_stay_together():
    sources = ["age", "age", "city", "city", "city", "x"]  # age has a missing indicator, city three levels
    index = build_group_index(sources, None, table_columns=COLUMNS, target="y")
    assert index.names == ("age", "city", "x")
    assert index.group_ids.tolist() == [0, 0, 1, 1, 1, 2]
    assert index.n_encoded.tolist() == [2, 3, 1]
    # sqrt(d_g) with d_g = encoded columns * hidden width
    penalty = make_penalty(index.group_ids, index.n_encoded, 4, torch.float64)
    assert penalty.weights.tolist() == pytest.approx(np.sqrt([8, 12, 4]))


def test_a_map_merges_columns():
    index = build_group_index(["age", "city", "x"], {"age": "person", "city": "person"}, table_columns=COLUMNS, target="y")
    assert index.names == ("person", "x")
    assert index.members == (("age", "city"), ("x",))
    assert index.group_of("city") == "person"


def test_unknown_columns_are_named():
    with pytest.raises(GlselectError, match="names column\\(s\\) not in the table: 'agee'"):
        build_group_index(["age"], {"agee": "g"}, table_columns=COLUMNS, target="y")
