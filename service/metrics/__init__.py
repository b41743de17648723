"""Prometheus metrics of the service: what processes count as they work (`recorded`, and the LLM
backends' `llm.metrics`), what the API reads at each scrape (`scraped`), and where processes keep
their counts so that one scrape adds them up (`multiprocess`)."""
