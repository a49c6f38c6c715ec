"""Fixtures of the segmentation tests: a Session with its own home and the shared CT opened in it."""

from __future__ import annotations

import pytest

from viewer.core.session import Session


@pytest.fixture
def session(tmp_path):
    """A Session journalling under the test's folder, edits authored by 'dr_test'."""
    s = Session(home=tmp_path / "home", user="dr_test")
    yield s
    s.close()


@pytest.fixture
def ct(session, shared_data):
    """The shared 3 mm CT (direction diag(-1, -1, 1)) opened in ``session``."""
    return session.open(shared_data / "ct_abdomen_3mm.nii.gz")
