"""The Python examples in docs/ run as written: every `>>>` line is a doctest."""
import doctest
from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
WITH_EXAMPLES = [p for p in DOCS if ">>> " in p.read_text()]


def test_docs_have_examples_to_check():
    assert any(p.name == "simulate.md" for p in WITH_EXAMPLES)


@pytest.mark.parametrize("page", WITH_EXAMPLES, ids=lambda p: p.name)
def test_doc_examples_give_what_the_page_says(page):
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE,
                              verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {page.name} failed (see above)"
