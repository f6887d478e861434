"""The execution graph as a picture (``-execution_graph_files``): SVG, PNG and DOT of the demo configuration's graph,
collapsing of chunks and steps, bad paths refused before anything runs."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import write_config
from iota2.cli import main, prepare_run, select_builders
from iota2.core.config import load_config
from iota2.core.errors import ConfigError
from iota2.core.graph import Graph
from iota2.core.graph_picture import MAX_CHUNK_NODES, picture_of, picture_paths, write_pictures


def _graphs(config_path: Path) -> list[tuple[str, Graph]]:
    config = load_config(config_path)
    builders = select_builders(config)
    for builder in builders:
        builder.check_config()
    plans = prepare_run(builders, config)
    return [(type(builder).__name__, graph.subgraph(groups)) for builder, graph, groups in plans]


@pytest.fixture(scope="module")
def demo_graphs(tmp_path_factory, s2_dataset):
    """The graph of the test configuration (2 tiles, 2 chunks each) and one with 12 chunks per tile and 2 runs."""
    root = tmp_path_factory.mktemp("graph_picture")
    small = _graphs(write_config(root / "small.yaml", s2_dataset, root / "out_small"))
    many = _graphs(write_config(root / "many.yaml", s2_dataset, root / "out_many", arg_train={"runs": 2},
                                python_data_managing={"number_of_chunks": 12}))
    return small, many


def _node_ids(svg_or_dot: str) -> set[str]:
    return set(re.findall(r"^\s*(n\d+) \[label=", svg_or_dot, flags=re.MULTILINE))


@pytest.mark.parametrize("engine", ["matplotlib", pytest.param("dot", marks=pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz dot not installed (Debian: graphviz)"))])
def test_svg_and_png_of_the_demo_graph(tmp_path, demo_graphs, engine):
    graphs = demo_graphs[0]
    graph = graphs[0][1]
    svg, png = tmp_path / "graph.svg", tmp_path / "graph.png"
    write_pictures([svg, png], graphs, engine=engine)
    root = ET.parse(svg).getroot()  # valid XML
    assert root.tag.endswith("svg")
    text = " ".join(element.text or "" for element in root.iter())
    for step in graph.steps:  # every step and group is named as text (searchable in a browser)
        assert step in text, step
    for group in graph.groups:
        assert group in text
    assert "T31TCJ" in text and "T31TDJ" in text
    from matplotlib.image import imread

    image = imread(png)
    assert image.shape[0] >= 300 and image.shape[1] >= 600
    assert float(np.std(image[..., :3])) > 0.05  # not a blank page
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temporary file left


def test_dot_text_has_every_task_or_its_group(tmp_path, demo_graphs):
    for graphs, chunks in ((demo_graphs[0], 2), (demo_graphs[1], 12)):
        graph = graphs[0][1]
        dot = tmp_path / "graph.dot"
        write_pictures([dot], graphs)
        text = dot.read_text()
        assert text.startswith("digraph iota2 {") and text.rstrip().endswith("}")
        picture = picture_of(graphs)
        drawn = [name for node in picture.nodes for name in node.tasks]
        assert sorted(drawn) == sorted(graph.tasks)  # every task exactly once
        assert _node_ids(text) == {node.id for node in picture.nodes}
        for step in graph.steps:
            assert f'label="{step}"' in text  # a cluster per step
        for node in picture.nodes:
            assert f'{node.id} [label="{node.label}"' in text
        if chunks > MAX_CHUNK_NODES:  # chunks of a tile drawn as one node with their count
            assert f'label="T31TCJ: {chunks} chunks"' in text
            assert "classification T31TCJ chunk 3" not in text
            assert not any("chunk" in node.label and "chunks" not in node.label for node in picture.nodes)
        else:
            assert 'label="T31TCJ chunk 1"' in text
        edges = set(re.findall(r"^\s*(n\d+) -> (n\d+);", text, flags=re.MULTILINE))
        assert edges == set(picture.edges)
        owner = {name: node.id for node in picture.nodes for name in node.tasks}
        expected = {(owner[dep], owner[task.name]) for task in graph.tasks.values() for dep in task.dependencies}
        assert edges == {edge for edge in expected if edge[0] != edge[1]}  # every dependency, drawn once


def test_a_step_of_many_tasks_is_one_node():
    graph = Graph(["init", "classification"])
    graph.add_step("prepare", "init", "prepare a tile")
    graph.add_step("classify", "classification", "classify a chunk")
    tiles = [graph.add_task(f"prepare_T{index:02d}", "prepare", "os:getcwd", {"tile": f"T{index:02d}"})
             for index in range(30)]
    for index, tile in enumerate(tiles):
        for chunk in range(3):
            graph.add_task(f"classify_T{index:02d}_chunk_{chunk}", "classify", "os:getcwd",
                           {"tile": f"T{index:02d}", "chunk": chunk}, [tile])
    picture = picture_of([("Test", graph)])
    assert [len(step.nodes) for step in picture.steps] == [1, 1]
    assert [step.nodes[0].label for step in picture.steps] == ["30 tasks", "90 tasks"]
    assert picture.edges == [(picture.steps[0].nodes[0].id, picture.steps[1].nodes[0].id)]
    assert picture.tasks == 120
    small = picture_of([("Test", graph)], max_step_nodes=100)
    assert len(small.steps[1].nodes) == 90 and small.steps[1].nodes[0].label == "T00 chunk 0"
    chunks = picture_of([("Test", graph)], max_chunk_nodes=2, max_step_nodes=100)
    assert chunks.steps[1].nodes[0].label == "T00: 3 chunks" and len(chunks.steps[1].nodes) == 30


def test_picture_paths(tmp_path):
    assert picture_paths(None) == []
    assert picture_paths([f"{tmp_path}/a.svg,{tmp_path}/b.PNG", f"{tmp_path}/c.dot"]) == [
        tmp_path / "a.svg", tmp_path / "b.PNG", tmp_path / "c.dot"]
    with pytest.raises(ConfigError, match=r"'.*g\.jpg' has the extension '\.jpg'.*\.svg, \.png, \.pdf, \.dot"):
        picture_paths([f"{tmp_path}/g.jpg"])
    with pytest.raises(ConfigError, match="has no extension"):
        picture_paths([f"{tmp_path}/graph"])
    with pytest.raises(ConfigError, match=r"folder '.*missing' of .* does not exist; create it"):
        picture_paths([f"{tmp_path}/missing/g.svg"])
    (tmp_path / "d.svg").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        picture_paths([f"{tmp_path}/d.svg"])
    with pytest.raises(ConfigError, match="no file given"):
        picture_paths([","])


def test_cli_draws_without_running_and_refuses_bad_paths(tmp_path, s2_dataset, capsys):
    output = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", s2_dataset, output)
    code = main(["-config", str(config), "-only_summary", "-execution_graph_files",
                 f"{tmp_path}/g.svg,{tmp_path}/g.dot", f"{tmp_path}/g.png"])
    assert code == 0
    assert all((tmp_path / name).stat().st_size > 500 for name in ("g.svg", "g.dot", "g.png"))
    assert "execution graph drawn in" in capsys.readouterr().err
    assert not output.exists()  # nothing ran
    for bad, message in (("nowhere/g.svg", "folder '.*nowhere' of .* does not exist"),
                         ("g.gif", "has the extension '.gif'")):
        code = main(["-config", str(config), "-only_summary", "-execution_graph_files", f"{tmp_path}/{bad}"])
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(f"-execution_graph_files: .*{message}", err[0]), err
    code = main(["-config", str(config), "-scheduler_type", "debug", "-no_progress", "-execution_graph_files",
                 f"{tmp_path}/nowhere/g.svg"])
    assert code == 2 and not output.exists()  # refused before anything ran


def test_cli_draws_the_selected_groups_before_the_run(tmp_path, s2_dataset):
    output = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", s2_dataset, output, chain={"last_step": "init"})
    picture = tmp_path / "run.dot"
    assert main(["-config", str(config), "-scheduler_type", "debug", "-no_progress",
                 "-execution_graph_files", str(picture)]) == 0
    text = picture.read_text()
    assert 'label="validity"' in text and 'label="T31TCJ"' in text
    assert 'label="classification"' not in text  # only the groups the scheduler runs
    journal = output / "IOTA2_tasks_status.txt"
    assert journal.exists() and picture.stat().st_mtime_ns <= journal.stat().st_mtime_ns
