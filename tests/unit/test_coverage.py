from pipelines.coverage import coverage


def f(name, read, damage=(), quarantined=0):
    return {"file": name, "read": read, "quarantined": quarantined,
            "damage": [{"kind": k, "offset": 0, "detail": ""} for k in damage]}


def test_intact_files_cover_everything_and_a_missing_footer_loses_nothing():
    c = coverage([f("a.ndjson.gz", 10), f("masscan-p21.list", 5, ["missing_footer"])])
    assert c == {"fraction": 1.0, "at_least": 1.0, "exact": True, "jobs": 2, "method": "shards"}


def test_a_cut_shard_is_estimated_from_its_siblings_and_bounded_below_by_zero():
    files = [f("m-p22-shard1of3.ndjson.gz", 100), f("m-p22-shard3of3.ndjson.gz", 120),
             f("m-p22-shard2of3.ndjson.gz", 56, ["compression_truncated", "partial_last_record"], 1),
             f("z-p80.csv", 40)]
    c = coverage(files)
    # job p22: 2 intact thirds + 55/110 of the third; job p80: whole; mean over the two jobs
    assert c["fraction"] == round(((2 + 0.5) / 3 + 1) / 2, 4)
    assert c["at_least"] == round((2 / 3 + 1) / 2, 4)
    assert c["jobs"] == 2 and c["exact"] is False


def test_a_shard_that_never_arrived_covers_nothing():
    c = coverage([f("m-shard1of4.json", 10), f("m-shard2of4.json", 10)])
    assert c["fraction"] == c["at_least"] == 0.5 and c["exact"] is False


def test_the_site_sentence_says_what_is_known():
    from pipelines.report.pages import coverage_sentence
    exact = {"files_damaged": 0, "coverage": coverage([f("a.json", 3)])}
    assert coverage_sentence(exact).startswith("This week covers 100.0% of the targeted addresses")
    lone = {"files_damaged": 1, "coverage": coverage([f("a.json", 3), f("b.json", 2, ["partial_last_record"])])}
    assert "covers at least 50.0%" in coverage_sentence(lone)
    est = {"files_damaged": 1, "coverage": coverage([f("x-shard1of2.j", 10), f("x-shard2of2.j", 5, ["compression_truncated"])])}
    assert "about 75.0%" in coverage_sentence(est) and "at least 50.0%" in coverage_sentence(est)
