"""The registry every extension kind uses."""

import pytest

from mtl_tf.registry import Registry


def make():
    things = Registry("thing")

    @things.register("box")
    class Box:
        def __init__(self, size: int = 1, colour: str = "red"):
            self.size, self.colour = size, colour

    return things, Box


def test_get_by_name_dict_and_instance():
    things, box_cls = make()
    assert isinstance(things.get("box"), box_cls)
    built = things.get({"name": "box", "size": 3})
    assert built.size == 3
    assert things.get(built) is built


def test_unknown_name_lists_known_and_suggests():
    things, _ = make()
    with pytest.raises(ValueError, match=r"unknown thing 'bx' \(did you mean 'box'\?\); allowed: box"):
        things.get("bx")


def test_unknown_option_names_path_and_suggests():
    things, _ = make()
    with pytest.raises(ValueError, match=r"model.thing.box: unknown option 'colur' \(did you mean 'colour'\?\)"):
        things.get({"name": "box", "colur": "blue"}, where="model.thing")


def test_config_without_name_is_refused():
    things, _ = make()
    with pytest.raises(ValueError, match="needs a 'name'"):
        things.get({"size": 2})


def test_double_registration_of_another_class_is_refused():
    things, _ = make()
    with pytest.raises(ValueError, match="already registered"):
        things.register("box")(type("Other", (), {}))
