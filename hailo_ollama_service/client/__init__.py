"""Any client of the API and of the model library: bounded HTTP, the API
calls, the library probe, pulls and the benchmark. Run by anyone; every
answer is treated as hostile."""
