"""Dataset exports: a job's accepted samples streamed in every export format, by name
(`service.export.registry`): JSON Lines in each writable dataset format (`json_lines`; `unified`
straight from the stored JSON, `unified`), Parquet (`parquet`) and DPO preference pairs (`dpo`,
pairing in `preference`), all reading the accepted samples a chunk at a time (`accepted`)."""
