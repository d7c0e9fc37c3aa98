"""Mutation runs only (scripts/run-mutation.py puts this file in the stage folder).

mutmut hands pytest the tests that cover a mutated function in no particular order and stops at
the first failure, so the order decides how long a detected mutant takes. The focused files come
first (a strict check's mutant meets its own test early), then the broad ones, each in its own
order of definition.
"""

from __future__ import annotations

ORDER = ("test_strict_checks.py", "test_config_loading.py", "test_model.py", "test_addresses.py",
         "test_generator.py", "test_generator_edges.py", "test_reruns.py")


def pytest_collection_modifyitems(items: list) -> None:
    def key(item) -> tuple[int, int]:
        name = item.location[0].rsplit("/", 1)[-1]
        rank = ORDER.index(name) if name in ORDER else len(ORDER)
        return rank, item.location[1] or 0

    items.sort(key=key)
