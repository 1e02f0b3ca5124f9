"""The public namespace imports and every name in __all__ resolves."""

import constrain


def test_all_names_resolve() -> None:
    for name in constrain.__all__:
        assert getattr(constrain, name) is not None, name


def test_errors_form_one_tree() -> None:
    for name in constrain.__all__:
        obj = getattr(constrain, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, constrain.ConstrainError), name
