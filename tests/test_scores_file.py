"""Importing the score files of FIQA tools amva cannot run: formats, matching, problems."""

import numpy as np
import pandas as pd
import pytest

from amva.quality.scores_file import import_scores, normalise_path, read_scores

IDS = ["obama/obama1.jpg", "obama/obama2.jpg", "biden/biden1.jpg", "biden/biden2.jpg"]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _kinds(problems):
    return sorted(zip(problems["kind"], problems["item"], strict=True))


def test_path_score_absolute_paths_and_spaces(tmp_path):
    path = _write(
        tmp_path,
        "crfiqa.txt",
        "/data/lfw/obama/obama1.jpg 0.5\n"
        "/data/lfw/obama/obama2.jpg\t1.25\n"
        "\n"
        "# comment\n"
        "/data/lfw/biden/biden1.jpg -0.75\n"
        "/data/lfw/biden/biden2.jpg 2e-1\n",
    )
    ds, problems = import_scores(IDS, path)
    assert ds["image"].values.tolist() == IDS
    np.testing.assert_array_equal(ds["raw"].values, [0.5, 1.25, -0.75, 0.2])
    np.testing.assert_array_equal(ds["quality"].values, ds["raw"].values)
    assert problems.empty and list(problems.columns) == ["kind", "item", "reason"]
    assert ds.attrs["method"] == "scores_file" and ds.attrs["higher_is_better_raw"] == 1
    assert ds.attrs["oriented"] == "higher = better" and ds.attrs["coverage"] == 1.0
    assert ds.attrs["scores_format"] == "path_score"

    spaced = _write(tmp_path, "spaces.txt", "my photos/obama/obama1.jpg 3\nrel dir/obama/obama2.jpg   4  \n")
    s = read_scores(spaced)
    assert s.index.tolist() == ["my photos/obama/obama1.jpg", "rel dir/obama/obama2.jpg"]
    assert s.tolist() == [3.0, 4.0]
    ds, problems = import_scores(IDS[:2], spaced)
    np.testing.assert_array_equal(ds["raw"].values, [3.0, 4.0])


def test_orientation_flips_quality_keeps_raw(tmp_path):
    path = _write(tmp_path, "s.txt", "".join(f"{i} {v}\n" for i, v in zip(IDS, [1.0, 2.0, 3.0, 4.0], strict=True)))
    up, _ = import_scores(IDS, path, method="crfiqa")
    down, _ = import_scores(IDS, path, higher_is_better=False, method="faceqnet")
    np.testing.assert_array_equal(down["raw"].values, up["raw"].values)
    np.testing.assert_array_equal(down["quality"].values, -up["raw"].values)
    assert down.attrs["higher_is_better_raw"] == 0 and down.attrs["method"] == "faceqnet"
    assert "faceqnet" in down["quality"].attrs["description"]


def test_problems_table_windows_paths_duplicates_bad_lines(tmp_path):
    path = _write(
        tmp_path,
        "sdd.txt",
        "C:\\data\\lfw\\obama\\obama1.jpg 0.9\r\n"
        "C:\\data\\lfw\\obama\\obama2.jpg 0.8\r\n"
        "C:\\data\\lfw\\obama\\obama2.jpg 0.7\r\n"  # duplicate, different score
        "C:\\data\\lfw\\biden\\biden1.jpg 0.6\r\n"
        "C:\\data\\lfw\\biden\\biden1.jpg 0.6\r\n"  # repeat with the same score: fine
        "C:\\data\\lfw\\biden\\biden9.jpg 0.5\r\n"  # not in the dataset
        "C:\\data\\lfw\\biden\\biden2.jpg n/a\r\n"  # unparsable
        "lonely\r\n",  # unparsable: no score
    )
    ds, problems = import_scores(IDS, path, min_coverage=0.5)
    np.testing.assert_array_equal(ds["raw"].values, [0.9, np.nan, 0.6, np.nan])
    assert ds.attrs["coverage"] == 0.5
    assert _kinds(problems) == sorted(
        [
            ("unparsable", "C:\\data\\lfw\\biden\\biden2.jpg"),
            ("unparsable", "lonely"),
            ("extra", "C:\\data\\lfw\\biden\\biden9.jpg"),
            ("duplicate", "obama/obama2.jpg"),
            ("missing", "biden/biden2.jpg"),
        ]
    )
    reasons = dict(zip(problems["item"], problems["reason"], strict=True))
    assert reasons["obama/obama2.jpg"].startswith("listed 2 times with different scores")
    assert reasons["biden/biden2.jpg"] == "no score in sdd.txt"
    assert reasons["C:\\data\\lfw\\biden\\biden9.jpg"] == "line 6: not in the dataset"
    assert reasons["C:\\data\\lfw\\biden\\biden2.jpg"].startswith("line 7: could not read a score from 'n/a'")
    assert reasons["lonely"].startswith("line 8:")
    with pytest.warns(UserWarning, match="skipped 2"):
        s = read_scores(path)
    assert s.index[0] == "C:/data/lfw/obama/obama1.jpg" and len(s) == 6


def test_coverage_error_names_file_coverage_missing_and_option(tmp_path):
    path = _write(tmp_path, "grafiqs.txt", "obama/obama1.jpg 1\n")
    with pytest.raises(ValueError) as err:
        import_scores(IDS, path)
    msg = str(err.value)
    assert str(path) in msg and "25.0%" in msg and "1 of 4" in msg
    assert "'obama/obama2.jpg'" in msg and "'biden/biden2.jpg'" in msg
    assert "min_coverage=0.25" in msg
    ds, problems = import_scores(IDS, path, min_coverage=0.25)
    assert int(np.isfinite(ds["raw"].values).sum()) == 1 and (problems["kind"] == "missing").sum() == 3

    many = [f"p/{i}.jpg" for i in range(20)]
    with pytest.raises(ValueError, match=r"'p/4.jpg', \.\.\. \(20 in all\)") as err:
        import_scores(many, path)
    assert "min_coverage=0 " in str(err.value)

    nothing = _write(tmp_path, "other.txt", "/x/y/z.jpg 1\n")
    with pytest.raises(ValueError, match="No path in the file matched"):
        import_scores(IDS, nothing)


def test_suffix_matching_strip_prefix_and_ambiguity(tmp_path):
    ids = ["obama2.jpg", "a/obama2.jpg", "b/c.png"]
    path = _write(tmp_path, "s.txt", "/root/x/a/obama2.jpg 1\n/root/b/c.png 2\n/root/b/c.jpg 3\n")
    ds, problems = import_scores(ids, path, min_coverage=0)
    np.testing.assert_array_equal(ds["raw"].values, [np.nan, np.nan, 2.0])
    amb = problems[problems["kind"] == "ambiguous"]
    assert amb["item"].tolist() == ["/root/x/a/obama2.jpg"]
    assert "a/obama2.jpg, obama2.jpg" in amb["reason"].iloc[0]
    # extensions must match: c.jpg is not c.png
    assert problems.loc[problems["kind"] == "extra", "item"].tolist() == ["/root/b/c.jpg"]

    # an exact match (after strip_prefix) wins over the suffix matches
    ds, problems = import_scores(ids, path, strip_prefix="/root/x/", min_coverage=0)
    np.testing.assert_array_equal(ds["raw"].values, [np.nan, 1.0, 2.0])
    assert "ambiguous" not in problems["kind"].tolist()
    # a path component boundary is required: "xa/obama2.jpg" does not end with "/a/obama2.jpg"
    ds, _ = import_scores(["a/obama2.jpg"], _write(tmp_path, "t.txt", "xa/obama2.jpg 5\n"), min_coverage=0)
    assert np.isnan(ds["raw"].values[0])


def test_demo_ids_without_extension_match_exported_images(tmp_path):
    ids = ["obama2/gaussian_blur/3", "obama2/none/0"]
    path = _write(tmp_path, "s.txt", "/tmp/export/obama2/gaussian_blur/3.png 0.1\nobama2/none/0.jpg 0.2\n")
    ds, problems = import_scores(ids, path)
    np.testing.assert_array_equal(ds["raw"].values, [0.1, 0.2])
    assert problems.empty


def test_csv_columns(tmp_path):
    path = _write(
        tmp_path,
        "magface.csv",
        "path,mag,norm_rank\n"
        + "".join(f"/d/{i},{v},{r}\n" for i, v, r in zip(IDS, [20.5, 22.0, 25.25, 19.0], [3, 2, 1, 4], strict=True)),
    )
    with pytest.raises(ValueError, match="several numeric columns.*'mag', 'norm_rank'"):
        import_scores(IDS, path)
    with pytest.raises(ValueError, match="no score column 'nope'.*'path', 'mag', 'norm_rank'"):
        import_scores(IDS, path, column="nope")
    ds, problems = import_scores(IDS, path, column="mag", method="magface")
    np.testing.assert_array_equal(ds["raw"].values, [20.5, 22.0, 25.25, 19.0])
    assert ds.attrs["scores_format"] == "csv" and ds.attrs["scores_column"] == "mag" and problems.empty

    other = _write(tmp_path, "diffiqa.csv", 'score,"image path",note\n0.3,obama/obama1.jpg,ok\n,obama/obama2.jpg,x\n')
    ds, problems = import_scores(IDS[:2], other, id_column="image path", min_coverage=0.5)
    np.testing.assert_array_equal(ds["raw"].values, [0.3, np.nan])
    assert problems["reason"].tolist()[0] == "line 3: empty score in column 'score'"

    headerless = _write(tmp_path, "clib.csv", "obama/obama1.jpg,0.25\nobama/obama2.jpg,0.5\n")
    assert read_scores(headerless).tolist() == [0.25, 0.5]


OFIQ_HEADER = "Filename;UnifiedQualityScore;Sharpness;UnifiedQualityScore.scalar;Sharpness.scalar;\n"


def test_ofiq_output(tmp_path):
    path = _write(
        tmp_path,
        "ofiq.csv",
        OFIQ_HEADER
        + "/imgs/obama/obama1.jpg;41.500000;80;42;79;\n"
        + "/imgs/obama/obama2.jpg;30;60.250000;31;61\n"  # no trailing ';'
        + "/imgs/biden/biden1.jpg;0;0;-1;-1;\n"  # OFIQ could not assess it
        + "/imgs/biden/biden2.jpg;55;70;57;\n",  # the scalar Sharpness is empty
    )
    ds, problems = import_scores(IDS, path, strip_prefix="/imgs", min_coverage=0.5, method="ofiq")
    assert ds.attrs["scores_format"] == "ofiq" and ds.attrs["scores_column"] == "UnifiedQualityScore.scalar"
    np.testing.assert_array_equal(ds["raw"].values, [42.0, 31.0, np.nan, 57.0])
    assert _kinds(problems) == [("failed", "biden/biden1.jpg")]

    ds, problems = import_scores(IDS, path, column="Sharpness", min_coverage=0.5)
    np.testing.assert_array_equal(ds["raw"].values, [80.0, 60.25, 0.0, 70.0])
    ds, problems = import_scores(IDS, path, column="Sharpness.scalar", min_coverage=0.5)
    np.testing.assert_array_equal(ds["raw"].values, [79.0, 61.0, np.nan, np.nan])
    assert _kinds(problems) == sorted(
        [("unparsable", "/imgs/biden/biden2.jpg"), ("failed", "biden/biden1.jpg"), ("missing", "biden/biden2.jpg")]
    )
    assert problems.loc[problems["kind"] == "unparsable", "reason"].iloc[0].startswith("line 5:")
    short = _write(tmp_path, "short.csv", OFIQ_HEADER + "obama/obama1.jpg;1;2\n")
    _, problems = import_scores(IDS[:1], short, min_coverage=0)
    assert problems["reason"].tolist() == ["line 2: 3 fields, the header has 5", "no score in short.csv"]
    with pytest.raises(ValueError, match="no score column 'Nope'.*'UnifiedQualityScore.scalar'"):
        read_scores(path, column="Nope")

    # the format is auto-detected from the header, also without the .csv extension
    txt = _write(tmp_path, "ofiq.txt", OFIQ_HEADER + "obama/obama1.jpg;1;2;3;4;\n")
    s = read_scores(txt)
    assert s.name == "UnifiedQualityScore.scalar" and s.tolist() == [3.0]
    assert read_scores(txt, fmt="ofiq", column="UnifiedQualityScore").tolist() == [1.0]


def test_read_scores_series_and_helpers(tmp_path):
    path = _write(tmp_path, "s.txt", "./a\\b.jpg 1\nroot/a/b.jpg 2\n")
    s = read_scores(path, strip_prefix="root")
    assert isinstance(s, pd.Series) and s.index.name == "id"
    assert s.index.tolist() == ["a/b.jpg", "a/b.jpg"] and s.tolist() == [1.0, 2.0]
    assert normalise_path("C:\\x\\\\y\\z.png", strip_prefix="C:\\x") == "y/z.png"
    with pytest.raises(ValueError, match="unknown scores file format"):
        read_scores(path, fmt="xml")
    with pytest.raises(ValueError, match="unique"):
        import_scores(["a", "a"], path)
    with pytest.raises(ValueError, match="min_coverage"):
        import_scores(["a"], path, min_coverage=2)
    with pytest.raises(FileNotFoundError):
        read_scores(tmp_path / "none.txt")
