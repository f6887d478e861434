"""Palette of the colour-indexed map."""

from iota2.builders.mosaic import class_colormap


def test_colour_table_colours_and_defaults_for_the_labels_it_leaves_out():
    palette = class_colormap({1: (10, 20, 30), 5: (200, 100, 0)}, [1, 2, 5])
    assert palette[0] == (0, 0, 0, 0)
    assert palette[1] == (10, 20, 30, 255) and palette[5] == (200, 100, 0, 255)
    assert palette[2][3] == 255 and palette[2][:3] not in ((10, 20, 30), (200, 100, 0))


def test_without_colour_table_every_label_gets_a_distinct_colour():
    palette = class_colormap({}, [3, 7, 11])
    assert len({palette[label] for label in (3, 7, 11)}) == 3
