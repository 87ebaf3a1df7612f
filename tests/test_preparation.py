"""Loading responses from where they live: SQLite, PostgreSQL, local files and S3 object storage."""

import sqlite3

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from servers import PostgresServer, S3Server

from irt_nb.science.preparation import create_sample_database, load_responses
from irt_nb.science.processing import process_responses

SPRING_MATH = {"exam": "2026-spring", "subject": "math"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    "The sample database and, beside it, the same records as CSV and Parquet with other column names."
    folder = tmp_path_factory.mktemp("sample")
    db = create_sample_database(folder / "sample.sqlite", seed=4, n_students=800)
    with sqlite3.connect(db) as con:
        raw = pd.read_sql("SELECT * FROM responses ORDER BY response_id", con)
    renamed = raw.rename(
        columns={"student_id": "user_id", "item_id": "question_id", "correct": "is_correct"}
    )
    renamed.to_csv(folder / "responses.csv", index=False)
    renamed.to_parquet(folder / "responses.parquet", index=False)
    return folder, db, raw


MAPPING = {"student_id": "user_id", "item_id": "question_id", "correct": "is_correct"}


def expected_rows(raw, exam=None, subject=None, since=None, until=None):
    keep = np.ones(len(raw), bool)
    if exam:
        keep &= raw.exam == exam
    if subject:
        keep &= raw.subject == subject
    if since:
        keep &= pd.to_datetime(raw.answered_at) >= pd.Timestamp(since)
    if until:
        keep &= pd.to_datetime(raw.answered_at) < pd.Timestamp(until)
    return raw[keep]


def test_sqlite_reads_only_needed_columns_with_filters(sample):
    _, db, raw = sample
    loaded = load_responses(
        f"sqlite:///{db}", since="2026-03-16T12:00:00", until="2026-03-17", **SPRING_MATH
    )
    want = expected_rows(raw, since="2026-03-16T12:00:00", until="2026-03-17", **SPRING_MATH)
    assert loaded.rows_read == len(want) > 0
    assert list(loaded.table.columns) == [
        "student_id",
        "item_id",
        "correct",
        "answered_at",
        "exam",
        "subject",
    ]
    right = want.correct.str.strip().str.lower().isin(["1", "true", "correct"])
    assert loaded.table.correct.sum() == right.sum()


def test_filter_values_are_bound_parameters_not_sql(sample):
    _, db, _ = sample
    with pytest.raises(ValueError, match="exam \"2026-spring' OR '1'='1\" matches no row"):
        load_responses(f"sqlite:///{db}", exam="2026-spring' OR '1'='1")  # bound: matches nothing
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM responses").fetchone()[0] > 0


@pytest.mark.parametrize("name", ["responses.csv", "responses.parquet"])
def test_files_with_a_column_map_give_the_same_records_as_the_database(sample, name):
    folder, db, _ = sample
    from_db = load_responses(f"sqlite:///{db}", **SPRING_MATH)
    from_file = load_responses(folder / name, columns=MAPPING, **SPRING_MATH)
    assert from_file.rows_read == from_db.rows_read
    a, b = (process_responses(x) for x in (from_db, from_file))
    np.testing.assert_array_equal(a.codes, b.codes)
    assert list(a.item_ids) == list(b.item_ids)


def test_bad_sources_say_what_and_where(sample, tmp_path):
    folder, db, raw = sample
    with pytest.raises(
        ValueError,
        match=r"missing column\(s\) 'student_id' \(for student_id\), 'item_id' \(for item_id\)",
    ):
        load_responses(folder / "responses.csv")
    with pytest.raises(ValueError, match=r"no table 'answers'"):
        load_responses(f"sqlite:///{db}", table="answers")
    dirty = raw.copy()
    dirty.loc[[3, 11], "correct"] = ["partly", "2"]
    dirty.loc[5, "student_id"] = None
    dirty.to_csv(tmp_path / "dirty.csv", index=False)
    with pytest.raises(ValueError, match=r"column 'student_id': 1 rows have no id \(rows \[5\]"):
        load_responses(tmp_path / "dirty.csv")
    dirty.loc[5, "student_id"] = "S1"
    dirty.to_csv(tmp_path / "dirty.csv", index=False)
    with pytest.raises(
        ValueError,
        match=r"column 'correct': 2 rows are neither right nor wrong \(values '2', 'partly'; rows \[3, 11\]",
    ):
        load_responses(tmp_path / "dirty.csv")
    dirty.loc[[3, 11], "correct"] = "1"
    dirty.loc[9, "answered_at"] = "yesterday"
    dirty.to_csv(tmp_path / "dirty.csv", index=False)
    with pytest.raises(
        ValueError,
        match=r"column 'answered_at': 1 rows are not dates, e.g. 'yesterday' \(rows \[9\]",
    ):
        load_responses(tmp_path / "dirty.csv")


def test_processing_report_accounts_for_every_row(sample):
    _, db, _ = sample
    loaded = load_responses(f"sqlite:///{db}", exam="2026-autumn", keep=("subject",))
    matrix = process_responses(
        loaded, subject="reading", min_item_responses=300, min_person_responses=20
    )
    report = matrix.report.set_index("step")
    assert report.loc["loaded", "rows_in"] == loaded.rows_read
    assert report.loc["subject filter", "dropped"] == (loaded.table.subject != "reading").sum()
    assert report.loc["repeated attempts", "dropped"] > 0
    assert "min_person_responses" in report.index
    assert loaded.rows_read - matrix.report.dropped.sum() == (matrix.codes >= 0).sum()
    assert ((matrix.codes >= 0).sum(axis=1) >= 20).all() and (
        (matrix.codes >= 0).sum(axis=0) >= 300
    ).all()


def test_s3_object_storage_through_a_local_s3_server(sample):
    folder, db, _ = sample
    with S3Server() as s3:
        for name in ("responses.csv", "responses.parquet"):
            s3.client.upload_file(str(folder / name), s3.bucket, f"2026/{name}")
        from_db = load_responses(f"sqlite:///{db}", **SPRING_MATH)
        for name in ("responses.csv", "responses.parquet"):
            loaded = load_responses(
                f"s3://{s3.bucket}/2026/{name}",
                columns=MAPPING,
                storage_options=s3.storage_options,
                **SPRING_MATH,
            )
            assert loaded.rows_read == from_db.rows_read
            assert loaded.table.correct.sum() == from_db.table.correct.sum()
        with pytest.raises(FileNotFoundError, match="no such file"):
            load_responses(f"s3://{s3.bucket}/2026/missing.csv", storage_options=s3.storage_options)


def test_postgresql_gives_the_same_records_as_sqlite(sample):
    _, db, raw = sample
    with PostgresServer() as pg:
        engine = sa.create_engine(pg.url)
        table = raw.assign(answered_at=pd.to_datetime(raw.answered_at))
        table.to_sql("responses", engine, index=False, chunksize=10_000)
        window = {"since": "2026-03-16T10:00:00", "until": "2026-03-16T14:00:00"}
        from_pg = load_responses(engine, **SPRING_MATH, **window)
        from_sqlite = load_responses(f"sqlite:///{db}", **SPRING_MATH, **window)
        engine.dispose()
    assert (
        from_pg.rows_read
        == from_sqlite.rows_read
        == len(expected_rows(raw, **SPRING_MATH, **window))
        > 0
    )
    np.testing.assert_array_equal(
        process_responses(from_pg).codes, process_responses(from_sqlite).codes
    )


def test_the_sparse_layout_fits_the_same_model(sample):
    from irt_nb.science.calculation import fit_irt

    _, db, _ = sample
    loaded = load_responses(f"sqlite:///{db}", **SPRING_MATH)
    dense, sparse = process_responses(loaded), process_responses(loaded, sparse=True)
    assert sparse.codes.nnz == (dense.codes >= 0).sum() and sparse.report.equals(dense.report)
    a, b = (fit_irt(m.codes, item_ids=list(m.item_ids), progress=False) for m in (dense, sparse))
    np.testing.assert_allclose(b.discrimination, a.discrimination, atol=1e-10, rtol=0)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)


def test_the_data_use_policy_refuses_personal_columns_before_anything_is_written(sample, tmp_path):
    "D4: a name or an e-mail never reaches a model file; a declared policy limits what is read."
    import json

    from conftest import run

    folder, db, raw = sample
    source = f"sqlite:///{db}"
    out = tmp_path / "model.json"
    exam = ("--exam", "2026-spring", "--subject", "math", "--out", out, "--quiet")
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"columns": ["student_id", "item_id", "correct", "exam", "subject"]})
    )
    emails = raw[raw.exam == "2026-spring"].assign(
        student_id=lambda d: d.student_id.str.lower() + "@school.example.org"
    )
    emails.to_csv(tmp_path / "emails.csv", index=False)
    refused = {
        "a name as the group": (
            (source, "--group", "student_name", *exam),
            "column 'student_name' (group) looks like personal data",
        ),
        "a name as the id": (
            (source, "--columns", "student_id=student_name", *exam),
            "column 'student_name' (student_id) looks like personal data",
        ),
        "a column the policy does not declare": (
            (source, "--group", "language", "--data-policy", policy, *exam),
            "column 'language' (group) is not in the data-use policy's columns",
        ),
        "e-mail addresses as ids": (
            (tmp_path / "emails.csv", *exam),
            "student id(s) look like e-mail addresses",
        ),
    }
    for case, (args, message) in refused.items():
        done = run("irt-nb", "fit", *map(str, args))
        assert done.returncode == 2 and message in done.stderr, (case, done.stderr)
        assert "@school" not in done.stderr + done.stdout and "Student " not in done.stderr
        assert not out.exists() and not list(tmp_path.glob("model.abilities.*")), case
    allowed = run("irt-nb", "fit", source, "--data-policy", str(policy), *map(str, exam))
    assert allowed.returncode == 0, allowed.stderr
    assert "Student " not in out.read_text()  # the names were never read


def test_polytomous_scores_are_the_same_from_csv_sqlite_and_postgresql(sample, tmp_path):
    "The sample's rating survey from a CSV file, SQLite and PostgreSQL: the same rows, matrix and calibration."
    from conftest import run

    from irt_nb.science.polytomous import (
        PolytomousSettings,
        encode_scores,
        fit_polytomous,
        load_polytomous_model,
        load_scores,
    )

    _, db, _ = sample
    with sqlite3.connect(db) as con:
        survey = pd.read_sql("SELECT * FROM survey_responses", con)
    renamed = {"student_id": "person", "score": "points"}
    survey.rename(columns=renamed).to_csv(tmp_path / "survey.csv", index=False)
    first_day = {"exam": "2026-survey", "subject": "engagement", "until": "2026-05-05"}
    every_day = {"exam": "2026-survey", "attempt_policy": "last"}  # re-answers the next day
    settings = PolytomousSettings(n_quadrature=21, standard_errors=False)
    with PostgresServer() as pg:
        engine = sa.create_engine(pg.url)
        survey.assign(answered_at=pd.to_datetime(survey.answered_at)).to_sql(
            "survey_responses", engine, index=False
        )
        for options in (first_day, every_day):
            loads = [
                load_scores(tmp_path / "survey.csv", columns=renamed, **options),
                load_scores(f"sqlite:///{db}", table="survey_responses", **options),
                load_scores(engine, table="survey_responses", **options),
            ]
            scored = [encode_scores(x.frame, id_column=x.id_column) for x in loads]
            fits = [fit_polytomous(s, settings=settings) for s in scored]
            for other, fit in zip(scored[1:], fits[1:], strict=True):
                np.testing.assert_array_equal(other.codes, scored[0].codes)
                assert abs(fit.log_likelihood - fits[0].log_likelihood) < 1e-9
            assert len({x.rows_read for x in loads}) == 1
        kept = survey[(survey.subject == "engagement") & (survey.answered_at < "2026-05-05")]
        first = load_scores(engine, table="survey_responses", **first_day)
        assert first.rows_read == len(kept) > 0 and len(first.frame) == kept.student_id.nunique()
        assert list(first.frame.columns[1:]) == ["E01", "E02", "E03", "E04"]
        assert len(loads[0].frame.columns) == 9  # every day: both scales
        # the CLI on PostgreSQL: the same model as from SQLite
        out = {}
        for name, source in (("pg", pg.url), ("sqlite", f"sqlite:///{db}")):
            out[name] = tmp_path / f"{name}.json"
            done = run(
                "irt-nb", "fit", source, "--table", "survey_responses", "--model", "gpcm",
                "--exam", "2026-survey", "--subject", "engagement", "--until", "2026-05-05",
                "--quadrature", "21", "--out", str(out[name]),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert f"from {len(kept)} answers" in done.stdout
        from_pg, from_sqlite = (load_polytomous_model(out[n]) for n in ("pg", "sqlite"))
        assert abs(from_pg.log_likelihood - from_sqlite.log_likelihood) < 1e-9
        # a score that is not a whole number names its row, student and item
        bad = survey.iloc[10]
        with engine.begin() as conn:
            conn.execute(
                sa.text("ALTER TABLE survey_responses ALTER COLUMN score TYPE double precision")
            )
            conn.execute(
                sa.text(
                    "UPDATE survey_responses SET score = 2.5 WHERE student_id = :s AND item_id = :i"
                ),
                {"s": bad.student_id, "i": bad.item_id},
            )
        with pytest.raises(ValueError) as refused:
            load_scores(engine, table="survey_responses", exam="2026-survey")
        engine.dispose()
    message = str(refused.value)
    assert "column 'score': " in message and "are not integer scores (values 2.5; rows [" in message
    assert f"the first is student {bad.student_id!r}, item {bad.item_id!r}" in message
