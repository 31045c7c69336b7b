"""Id lists, one number per line (partwise.data.id_list): the reader behind V-COCO's split ids and HICO-DET's rare
list."""
import numpy as np
import pytest

from partwise.data.id_list import read_id_list
from partwise.data.vcoco_official import read_split_ids
from partwise.errors import InputError
from partwise.eval.hico import read_rare


def test_reads_what_loadtxt_reads(tmp_path):
    path = tmp_path / "vcoco_test.ids"
    path.write_text("3\n\n 10 trailing field\n2.0\n1e1\n")
    assert read_id_list(path) == [3, 10, 2, 10] == np.loadtxt(path, usecols=0).astype(int).tolist()
    assert read_split_ids(path) == [3, 10, 2, 10]


@pytest.mark.parametrize("text, message", [
    ("1\nabc\n", r"ids:line 2: not an image id: 'abc'"),
    ("1\n2.5\n", r"ids:line 2: not an integer image id: '2.5'"),
    ("nan\n", r"ids:line 1: not an integer image id: 'nan'"),
    ("inf\n", r"ids:line 1: not an integer image id: 'inf'"),
])
def test_bad_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "x.ids"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_split_ids(path)


def test_range_and_missing_file(tmp_path):
    path = tmp_path / "rare.txt"
    path.write_text("1\n600\n601\n")
    with pytest.raises(InputError, match=r"rare\.txt:line 3: HOI id 601 outside 1\.\.600"):
        read_rare(path)
    with pytest.raises(InputError, match="no such file"):
        read_id_list(tmp_path / "absent.ids")


def test_rare_list_as_mask(tmp_path):
    path = tmp_path / "rare.txt"
    path.write_text("5\n1\n600\n")
    mask = read_rare(path)
    assert mask.shape == (600,) and np.flatnonzero(mask).tolist() == [0, 4, 599]
