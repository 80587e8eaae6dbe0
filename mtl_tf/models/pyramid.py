"""A feature pyramid: an image trunk's maps from high to low resolution, with their strides."""

from __future__ import annotations

from typing import Any, Iterator, Sequence


class Pyramid:
    """Feature maps of one image, finest first, each with its stride (input size / map size).

    Image trunks return one (``trunk.pyramid(x)``); architectures hand one to each task
    (the shared trunk's, or the task's own attended / mixed / routed maps); decoders turn
    it into one map at a task's output stride; image-level tasks pool its deepest map.

    Args:
        maps: (batch, H / stride, W / stride, channels) tensors, finest first.
        strides: the stride of each map, strictly increasing (e.g. [4, 8, 16, 32]).

    Example:
        >>> pyramid = Pyramid([c2, c3, c4, c5], [4, 8, 16, 32])
        >>> pyramid.deepest  # c5
        >>> pyramid.at(8)    # c3
    """

    def __init__(self, maps: Sequence[Any], strides: Sequence[int]):
        maps, strides = list(maps), list(strides)
        if not maps or len(maps) != len(strides):
            raise ValueError(f"a Pyramid needs one stride per map and at least one map; received "
                             f"{len(maps)} map(s) and strides {strides}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in strides) \
                or any(a >= b for a, b in zip(strides, strides[1:])):
            raise ValueError(f"Pyramid strides must be positive integers, strictly increasing (finest "
                             f"map first); received {strides}")
        flat = [m for m in maps if len(m.shape) != 4]
        if flat:
            raise ValueError(f"Pyramid maps must be (batch, height, width, channels); received shapes "
                             f"{[tuple(m.shape) for m in maps]}")
        self.maps, self.strides = maps, strides

    @property
    def deepest(self) -> Any:
        """The lowest-resolution map (what image-level tasks pool)."""
        return self.maps[-1]

    @property
    def widths(self) -> list[int]:
        """Channels of each map."""
        return [m.shape[-1] for m in self.maps]

    def at(self, stride: int) -> Any:
        """The map at ``stride``; KeyError naming the strides there are."""
        if stride not in self.strides:
            raise KeyError(f"the pyramid has no map at stride {stride}; strides: {self.strides}")
        return self.maps[self.strides.index(stride)]

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        return iter(zip(self.maps, self.strides))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{s}: {tuple(m.shape[1:])}" for m, s in self)
        return f"Pyramid({shapes})"


def check_pyramid_sizes(pyramid: Pyramid, height: int, width: int, where: str) -> None:
    """Refuses a pyramid whose maps are not exactly (height / stride, width / stride).

    Decoders upsample one level onto the next by the ratio of their strides, so every map
    must be the image size divided by its stride: the image's height and width must be
    multiples of the deepest stride.
    """
    deepest = pyramid.strides[-1]
    if height % deepest or width % deepest:
        raise ValueError(f"{where}: the image is {height}x{width} but the trunk's deepest stride is "
                         f"{deepest}; height and width must be multiples of it (change the feature's "
                         f"height/width, or use a trunk with fewer stages)")
    for level, (map_, stride) in enumerate(pyramid):
        expected = (height // stride, width // stride)
        if tuple(map_.shape[1:3]) != expected:
            raise ValueError(f"{where}: pyramid map {level} at stride {stride} is "
                             f"{tuple(map_.shape[1:3])}; expected {expected} for a {height}x{width} image")
