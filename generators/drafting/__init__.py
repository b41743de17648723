"""What both generators start from: a catalog's tools made ready (value samplers, validators,
wording) and a drafted sample of each query style (which tools it shows and calls)."""
