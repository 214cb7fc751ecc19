"""Reads a Tessera archive topic directory from S3 with pyarrow alone, as a data engineer would.

usage: read_archive.py s3://bucket/prefix/topic
S3 settings from S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY.
Prints one JSON object: the Hive partition values seen, the files read, and every row's
(_kafka_partition, _kafka_offset, transaction_id), so the test can check exactly-once itself.
"""

import json
import os
import sys
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pyarrow.fs as fs


def main() -> None:
    url = urlparse(sys.argv[1])
    endpoint = urlparse(os.environ["S3_ENDPOINT"])
    s3 = fs.S3FileSystem(
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
        region=os.environ.get("S3_REGION", "us-east-1"),
        access_key=os.environ["S3_ACCESS_KEY_ID"],
        secret_key=os.environ["S3_SECRET_ACCESS_KEY"],
    )
    # Hive layout: date=YYYY-MM-DD/hour=HH; names starting with "_" or "." are skipped by default.
    dataset = ds.dataset(
        f"{url.netloc}{url.path}", filesystem=s3, format="parquet", partitioning="hive"
    )
    table = dataset.to_table(
        columns=["_kafka_partition", "_kafka_offset", "transaction_id", "date", "hour"]
    )
    print(
        json.dumps(
            {
                "files": len(dataset.files),
                "dates": sorted({str(d) for d in table.column("date").to_pylist()}),
                "rows": [
                    [p, o, t]
                    for p, o, t in zip(
                        table.column("_kafka_partition").to_pylist(),
                        table.column("_kafka_offset").to_pylist(),
                        table.column("transaction_id").to_pylist(),
                    )
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
