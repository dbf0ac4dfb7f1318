"""The permissive / full recipes: split groups, licences, frame-rate fixes, discovery."""

from pathlib import PurePosixPath as P

import pytest

from mage.data import recipes
from mage.data.build_report import licence_summary
from mage.data.discover import discover_recipe


@pytest.mark.parametrize("rel, group", [
    ("cmu_daz_bvh_acrnn/salsa/salsa_01.bvh", "salsa_take_01"),
    ("cmu_daz_bvh_acrnn/salsa/salsa_16.bvh", "salsa_take_01"),  # partner of take 1
    ("cmu_daz_bvh_acrnn/salsa/salsa_30.bvh", "salsa_take_15"),
    ("cmu_daz_bvh_acrnn/indian/indian_04.bvh", "indian_04"),
    ("cmu_daz_bvh_acrnn/martial/martial_10.bvh", "martial_10"),
    ("hdm05_cut_asfamc/tr/HDM_tr_walk4StepsRstart_001_120.amc", "hdm05_tr"),
    ("cmu_mb_bvh/08/08_01.bvh", None),  # CMU: the usual subject rule
])
def test_cmu_hdm05_groups(rel, group):
    assert recipes.cmu_hdm05_group(P(rel)) == group


def test_salsa_partners_never_split():
    groups = {k: recipes.cmu_hdm05_group(P(f"salsa_{k:02d}.bvh")) for k in range(1, 31)}
    for k in range(1, 16):
        assert groups[k] == groups[k + 15]
    assert len(set(groups.values())) == 15


def test_salsa_read_at_60fps_others_keep_header():
    assert recipes.cmu_hdm05_fps(P("cmu_daz_bvh_acrnn/salsa/salsa_03.bvh")) == 60.0
    assert recipes.cmu_hdm05_fps(P("cmu_daz_bvh_acrnn/indian/indian_04.bvh")) is None


@pytest.mark.parametrize("rel, group", [
    ("dataset-2/dataset-2_walk-turn-left_youthful_012.bvh", "bandai_dataset-2_youthful"),
    ("dataset-2/dataset-2_raise-up-both-hands_elderly_001.bvh", "bandai_dataset-2_elderly"),
    ("dataset-1/dataset-1_bow_happy_001.bvh", "bandai_dataset-1_happy"),
    ("dataset-1/dataset-1_walk_not-confident_001.bvh", "bandai_dataset-1_not-confident"),
])
def test_bandai_groups(rel, group):
    assert recipes.bandai_group(P(rel)) == group


def test_hdm05_licence_differs_from_cmu_in_one_archive():
    spec = recipes.FULL_SOURCES[1]
    assert recipes.licence_of(spec, P("hdm05_cut_asfamc/bd/x.amc")) == recipes.LICENCE_HDM05
    assert recipes.licence_of(spec, P("cmu_mb_bvh/08/08_01.bvh")) == recipes.LICENCE_CMU


def test_permissive_recipe_has_no_non_commercial_source():
    lic = {s.licence for s in recipes.get_recipe("permissive").sources}
    assert not lic & set(recipes.NON_COMMERCIAL_LICENCES)
    assert recipes.LICENCE_BANDAI in {s.licence for s in recipes.get_recipe("full").sources}


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def test_discover_recipe_assigns_groups_licences_and_unique_ids(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    cache = tmp_path / "cache"
    _touch(shared / "cmu_asfamc" / "03" / "03_01.amc")
    _touch(cache / "cmu_hdm05" / "cmu_daz_bvh_acrnn" / "salsa" / "salsa_17.bvh")
    _touch(cache / "cmu_hdm05" / "hdm05_cut_asfamc" / "tr" / "HDM_tr_kick_001_120.amc")
    _touch(cache / "bandai_namco" / "dataset-2" / "dataset-2_run_youthful_001.bvh")
    monkeypatch.setenv(recipes.DATA_CACHE_ENV, str(cache))
    full = recipes.get_recipe("full")
    rec = recipes.Recipe(name="t", description="", test_subjects=full.test_subjects, sources=(
        recipes.SourceSpec(str(shared), "shared", recipes.LICENCE_CMU),) + full.sources[1:])
    files, folders = discover_recipe(rec)
    by_subject = {f.subject: f for f in files}
    assert set(by_subject) == {"03", "salsa_take_02", "hdm05_tr", "bandai_dataset-2_youthful"}
    assert set(by_subject) <= set(full.test_subjects)
    assert by_subject["salsa_take_02"].source_fps == 60.0
    assert by_subject["hdm05_tr"].licence == recipes.LICENCE_HDM05
    assert by_subject["bandai_dataset-2_youthful"].licence == recipes.LICENCE_BANDAI
    assert by_subject["03"].id.startswith("shared__")
    assert len({f.id for f in files}) == len(files) and len(folders) == 3


def test_missing_cache_source_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(recipes.DATA_CACHE_ENV, str(tmp_path / "nowhere"))
    rec = recipes.Recipe(name="t", description="", sources=(recipes.FULL_SOURCES[2],))
    with pytest.raises(FileNotFoundError, match="bandai_namco.*nowhere.*MAGE_DATA_CACHE"):
        rec.resolve_sources()


def test_licence_summary_hours_per_split():
    manifest = {"fps": 60, "splits": {"train": ["a", "b"], "test": ["c"]}, "sequences": {
        "a": {"frames": 216000, "licence": "X"}, "b": {"frames": 108000, "licence": "Y"},
        "c": {"frames": 54000, "licence": "X"}}}
    assert licence_summary(manifest) == {"X": {"train": 1.0, "test": 0.25}, "Y": {"train": 0.5}}


def test_bandai_recipe_is_the_bandai_part_of_full_with_the_same_held_out_styles():
    full, bandai = recipes.get_recipe("full"), recipes.get_recipe("bandai")
    assert set(bandai.sources) < set(full.sources)
    assert {s.licence for s in bandai.sources} == {recipes.LICENCE_BANDAI}
    # the same held-out styles as in full: a model trained on one never sees the other's test clips
    assert set(bandai.test_subjects) == {g for g in full.test_subjects if g.startswith("bandai_")}
    assert not set(bandai.test_subjects) & set(recipes.get_recipe("permissive").test_subjects)


@pytest.mark.parametrize("name", ["permissive", "full", "bandai"])
def test_val_groups_are_held_out_and_disjoint_from_test(name):
    rec = recipes.get_recipe(name)
    assert rec.val_subjects and not set(rec.val_subjects) & set(rec.test_subjects)
    # the same kinds as the test groups: every source family of the recipe has a val group
    kinds = {g.split("_")[0] if not g.isdigit() else "cmu" for g in rec.test_subjects}
    assert kinds == {g.split("_")[0] if not g.isdigit() else "cmu" for g in rec.val_subjects}


def test_full_val_is_permissive_val_plus_bandai_val():
    full = recipes.get_recipe("full")
    assert set(full.val_subjects) == (set(recipes.get_recipe("permissive").val_subjects)
                                      | set(recipes.get_recipe("bandai").val_subjects))
    assert recipes.get_recipe("cmu-mini").val_subjects == ()
