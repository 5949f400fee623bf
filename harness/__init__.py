"""Run the real services (nginx, gunicorn) on loopback for the tests, the demo and benchmarks."""
