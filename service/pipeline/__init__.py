"""The job engine: submit a job, generate and verify its batches, de-duplicate across batches,
count its funnel, finish, fail or recover it. Returns batch ids; only the API and the queue
enqueue."""
