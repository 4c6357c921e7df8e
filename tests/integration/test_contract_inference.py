"""``lakeio contract init`` profiles a dataset on either engine (issue 17): the contract it writes
passes on the data it came from and catches a planted bad row of each kind."""

from __future__ import annotations

import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

import lakeio
from lakeio.cli import cli
from lakeio.errors import DataQualityError


def orders(ids, statuses, amounts, notes):
    return pa.table({"order_id": pa.array(ids, pa.int64()), "status": statuses,
                     "amount": pa.array(amounts, pa.float64()), "note": notes})


@pytest.mark.parametrize(("engine", "storage"), [("arrow", "local"), ("arrow", "s3"), ("spark", "local"), ("spark", "s3")])
def test_an_inferred_contract_passes_on_its_data_and_catches_planted_bad_rows(catalog_on, tmp_path, request,
                                                                              engine, storage):
    if engine == "spark":
        request.getfixturevalue("spark")
    lake = catalog_on(storage, "inference", orders={"format": "delta"})
    lake.write("orders", orders(list(range(1, 41)), ["open", "paid", "shipped", "paid"] * 10,
                                [float(i % 17) + 0.5 for i in range(40)], [None, "gift"] * 20))
    conf = tmp_path / "conf"
    result = CliRunner().invoke(cli, ["--conf", str(conf), "--env", storage, "contract", "init", "orders",
                                      "--engine", engine, "-o", str(tmp_path / "orders-contract.yaml")])
    assert result.exit_code == 0, result.output
    contract = yaml.safe_load((tmp_path / "orders-contract.yaml").read_text())
    columns = contract["columns"]
    assert columns["order_id"] == {"type": "int64", "nullable": False, "checks": ["unique", {"between": [1, 40]}]}
    assert columns["status"]["checks"] == [{"in_set": ["open", "paid", "shipped"]}]
    assert columns["amount"]["checks"] == [{"between": [0.5, 16.5]}] and "nullable" not in columns["note"]

    resources = yaml.safe_load((conf / "inference.yaml").read_text())
    resources["orders"]["schema"] = str(tmp_path / "orders-contract.yaml")
    (conf / "inference.yaml").write_text(yaml.safe_dump(resources))
    lake = lakeio.Catalog.load(conf, env=storage)
    report = lake.validate("orders", engine=engine)
    assert report.passed, str(report)

    planted = {"unique": orders([7], ["paid"], [1.5], [None]),
               "in_set": orders([41], ["lost"], [1.5], [None]),
               "between": orders([42], ["paid"], [99.0], [None]),
               "not_null": orders([None], ["paid"], [1.5], [None])}
    for check, row in planted.items():
        data = lake.spark().createDataFrame(row.to_pylist(), "order_id bigint, status string, amount double, note string") \
            if engine == "spark" else row
        with pytest.raises(DataQualityError) as caught:
            lake.write("orders", data, mode="append", engine=engine)
        assert check in {r.check for r in caught.value.report.errors}, str(caught.value)
    assert lake.read("orders", engine="arrow").count() == 40
