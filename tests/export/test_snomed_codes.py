"""SNOMED CT codes for segment names: known anatomy, laterality, lesions, generic fallback."""

from __future__ import annotations

import json

import pytest

from viewer.core.snomed import ABNORMAL_STRUCTURE, ANATOMICAL_STRUCTURE, LEFT, RIGHT, TISSUE, codes_for_name


@pytest.mark.parametrize(
    ("name", "code", "laterality"),
    [
        ("liver", "10200004", None),
        ("Spleen", "78961009", None),
        ("kidney_left", "64033007", LEFT),
        ("Right Kidney", "64033007", RIGHT),
        ("aorta", "15825003", None),
        ("lung", "39607008", None),
        ("lung_upper_lobe_right", "45653009", RIGHT),
        ("lung_lower_lobe_left", "90572001", LEFT),
        ("lung_middle_lobe_right", "72481006", RIGHT),
        ("vertebrae_L1", "66794005", None),
        ("vertebrae_S1", "51282000", None),
        ("urinary_bladder", "89837001", None),
    ],
)
def test_known_anatomy_gets_its_snomed_code(name, code, laterality):
    coded = codes_for_name(name)
    assert coded.known and coded.type[0] == code and coded.category == ANATOMICAL_STRUCTURE
    assert coded.laterality == laterality


def test_lesions_are_abnormal_structures_with_their_organ():
    coded = codes_for_name("liver_tumour")
    assert coded.category == ABNORMAL_STRUCTURE and coded.type[0] == "4147007"
    assert coded.region == ("10200004", "Liver")


def test_unknown_names_get_the_generic_tissue_code():
    coded = codes_for_name("label_17")
    assert not coded.known and coded.category == TISSUE and coded.type == TISSUE


def test_most_totalsegmentator_structures_are_coded(shared_data):
    names = json.loads((shared_data / "totalsegmentator_total_labels.json").read_text()).values()
    coded = [codes_for_name(n) for n in names]
    assert sum(c.known for c in coded) >= 0.85 * len(coded)
