"""Sentences a lesson can only say when its own run shows them.

A lesson's text is written once, but it is read next to numbers that come from
the reader's run: another seed, another data set, a changed model. So a lesson
never types a result into Markdown. It either renders the sentence from the
computed values (:func:`say`), or it states the sentence next to the check that
makes it true (:func:`claim`)::

    claim("content-based beats popularity at k = 100", content[100] > popularity[100])

When the check holds, the reader sees the claim marked as checked. When it does
not, the reader sees a warning that the text says something this run does not
show, and ``make demo`` (which reads the executed notebooks through
:func:`failed_claims`) fails, and with it the test that runs the lessons.
"""

from __future__ import annotations

from collections.abc import Iterable

# Output metadata key under which every claim cell records its verdict.
METADATA_KEY = "tfrs_course_claim"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"


def claim(statement: str, holds: object, *, evidence: str = "") -> None:
    """State a sentence of the lesson and check it on this run.

    Args:
        statement: the sentence, as the lesson says it.
        holds: whether this run shows it (anything numpy or Python can call true or false).
        evidence: the numbers it rests on, shown beside the verdict.

    Nothing is returned, so that a claim ending a cell adds no output of its own.
    """
    verdict = bool(holds)
    detail = f" ({evidence})" if evidence else ""
    if verdict:
        text = f"Checked on this run: {statement}{detail}"
    else:
        text = (
            f"NOT SHOWN BY THIS RUN: {statement}{detail}.\n"
            "The lesson's text says this, but your numbers do not. Trust the numbers; "
            "if you changed nothing, please report it."
        )
    _show(text, {"statement": statement, "holds": verdict, "evidence": evidence})


def say(markdown: str) -> None:
    """Show a sentence rendered from computed values (Markdown in a notebook, text elsewhere)."""
    if _in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(markdown))
    else:
        print(markdown)


def _show(text: str, record: dict) -> None:
    if _in_notebook():
        from IPython.display import display

        display({"text/plain": text}, raw=True, metadata={METADATA_KEY: record})
    else:
        print(text)


def claims_in(notebook) -> list[dict]:
    """Every claim an executed notebook (an ``nbformat`` node) recorded, in order."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get(METADATA_KEY)
            if record is not None:
                found.append(dict(record))
    return found


def failed_claims(notebook) -> list[str]:
    """The statements of an executed notebook's claims that its run did not show."""
    return [_describe(record) for record in claims_in(notebook) if not record.get("holds")]


def _describe(record: dict) -> str:
    evidence = record.get("evidence")
    return record["statement"] + (f" ({evidence})" if evidence else "")


def summary(claims: Iterable[dict]) -> tuple[int, int]:
    """(claims that held, claims in all)."""
    claims = list(claims)
    return sum(bool(record.get("holds")) for record in claims), len(claims)
