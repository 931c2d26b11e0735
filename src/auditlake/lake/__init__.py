"""The lake: Parquet files of every event, on a local folder or S3."""
