"""Dataset exports: accepted samples streamed in every registered format, and DPO pairs."""
